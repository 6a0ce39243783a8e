package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// Jobs: queued in order, claimed within the caps however many processes claim at once, a job
// whose process died is claimed again with its saved state, progress only from the holder,
// cancel of a queued and of a running job, finishing, the owner's view.
func TestDownloadJobs(t *testing.T) {
	ctx := context.Background()
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		for i := range 6 {
			src := "huggingface"
			if i%2 == 1 {
				src = "civitai"
			}
			j := &store.DownloadJob{UserID: fmt.Sprintf("u%d", i%2), Username: "ann", Source: src, Request: "{}", Destination: "S3Mount/studio/models",
				Folder: "loras", Filename: fmt.Sprintf("m%d.safetensors", i)}
			if err := s.CreateDownloadJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // distinct creation times: the order is the queue's
		}
		caps := store.DownloadCaps{Total: 3, PerSource: map[string]int{"huggingface": 1, "civitai": 2}}
		now := time.Now()
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		for i := range 8 { // eight processes claim at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, ok, err := s.ClaimDownloadJob(ctx, fmt.Sprintf("p%d", i), caps, now, now.Add(30*time.Second))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					got[j.ID] = j.Source
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		bySource := map[string]int{}
		for _, src := range got {
			bySource[src]++
		}
		if len(got) != 3 || bySource["huggingface"] != 1 || bySource["civitai"] != 2 {
			t.Fatalf("claimed %v (by source %v), want 3 within the caps", got, bySource)
		}
		// Progress only from the holder.
		var id, holder string
		for jid := range got {
			j, _ := s.DownloadJob(ctx, jid)
			if j.Source == "huggingface" {
				id, holder = j.ID, j.Holder
			}
		}
		if held, _, err := s.SaveDownloadProgress(ctx, id, "intruder", `{"done":1}`, 1, 10, now.Add(time.Minute)); err != nil || held {
			t.Errorf("progress from another process: held %v %v", held, err)
		}
		if held, cancel, err := s.SaveDownloadProgress(ctx, id, holder, `{"done":8388608}`, 8388608, 20000000, now.Add(30*time.Second)); err != nil || !held || cancel {
			t.Fatalf("progress: held %v cancel %v %v", held, cancel, err)
		}
		// Its process dies: after the lease another claims it, with the saved state.
		later := now.Add(time.Minute)
		j, ok, err := s.ClaimDownloadJob(ctx, "p-next", store.DownloadCaps{Total: 10, PerSource: map[string]int{"huggingface": 1}}, later, later.Add(30*time.Second))
		if err != nil || !ok || j.ID != id || j.State != `{"done":8388608}` || j.BytesDone != 8388608 {
			t.Fatalf("the abandoned job: %+v %v %v", j, ok, err)
		}
		if held, _, _ := s.SaveDownloadProgress(ctx, id, holder, "{}", 0, 0, later.Add(time.Minute)); held {
			t.Error("the dead process still holds its job")
		}
		// Cancel: a running job is asked, a queued one is cancelled at once; only the owner's.
		if err := s.CancelDownloadJob(ctx, id, "someone-else"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cancel of another user's job: %v", err)
		}
		if err := s.CancelDownloadJob(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		if _, cancel, _ := s.SaveDownloadProgress(ctx, id, "p-next", "{}", 9, 20000000, later.Add(time.Minute)); !cancel {
			t.Error("the running job was not asked to stop")
		}
		if err := s.FinishDownloadJob(ctx, id, "p-next", store.DownloadCancelled, ""); err != nil {
			t.Fatal(err)
		}
		mine, err := s.DownloadJobs(ctx, "u0")
		if err != nil || len(mine) != 3 {
			t.Fatalf("u0's jobs: %d %v", len(mine), err)
		}
		var queued string
		for _, j := range mine {
			if j.Status == store.DownloadQueued {
				queued = j.ID
			}
		}
		if err := s.CancelDownloadJob(ctx, queued, "u0"); err != nil {
			t.Fatal(err)
		}
		if j, _ := s.DownloadJob(ctx, queued); j.Status != store.DownloadCancelled || j.FinishedAt.IsZero() {
			t.Errorf("a cancelled queued job: %+v", j)
		}
		if j, _ := s.DownloadJob(ctx, id); j.Status != store.DownloadCancelled {
			t.Errorf("the cancelled running job: %s", j.Status)
		}
		if all, _ := s.DownloadJobs(ctx, ""); len(all) != 6 {
			t.Errorf("every job: %d", len(all))
		}
	})
}
