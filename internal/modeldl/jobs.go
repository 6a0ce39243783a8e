package modeldl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mss-login/mss-login/internal/store"
)

// JobStore is what the workers need of the users database (*store.Store).
type JobStore interface {
	ClaimDownloadJob(ctx context.Context, holder string, caps store.DownloadCaps, at, until time.Time) (store.DownloadJob, bool, error)
	SaveDownloadProgress(ctx context.Context, id, holder, state string, done, total int64, until time.Time) (held, cancel bool, err error)
	FinishDownloadJob(ctx context.Context, id, holder, status, reason string) error
}

// DefaultCaps are the original's: 5 at once, 3 from CivitAI, 2 from Hugging Face.
var DefaultCaps = store.DownloadCaps{Total: 5, PerSource: map[string]int{CivitAI: 3, HuggingFace: 2}}

// Worker runs download jobs from the database: every process may run one; a job's lease makes
// one process run it, and its saved state lets another go on after a crash.
type Worker struct {
	DB     JobStore
	Client *http.Client
	Bases  Bases
	Caps   store.DownloadCaps
	// Key returns a user's API key for a source ("" when none).
	Key func(ctx context.Context, userID, source string) (string, error)
	// Dest opens a job's destination (an S3Mount's bucket, the models directory) for the file.
	Dest func(ctx context.Context, j store.DownloadJob, name string) (Dest, error)
	// Finished is told of each job that ends, with the file's name as the source gave it (""
	// when the job ended before it was known): the grant, the audit entry.
	Finished func(ctx context.Context, j store.DownloadJob, status, reason, name string, st State)
	Log      *slog.Logger
	Poll     time.Duration // how often to look for work (2 s)
	Lease    time.Duration // a job's lease, renewed at every part (1 min)

	holder string
}

// errLost stops a transfer whose job another process holds now, leaving the upload to it.
var errLost = errors.New("the job's lease passed to another process")

// Run claims and runs jobs until ctx ends, up to the caps' total at once in this process.
func (w *Worker) Run(ctx context.Context) {
	if w.Poll <= 0 {
		w.Poll = 2 * time.Second
	}
	if w.Lease <= 0 {
		w.Lease = time.Minute
	}
	if w.Caps.Total == 0 {
		w.Caps = DefaultCaps
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	w.holder = "dl-" + hex.EncodeToString(b)
	tick := time.NewTicker(w.Poll)
	defer tick.Stop()
	for {
		for {
			now := time.Now()
			j, ok, err := w.DB.ClaimDownloadJob(ctx, w.holder, w.Caps, now, now.Add(w.Lease))
			if err != nil || !ok {
				break
			}
			go w.run(ctx, j)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// run is one job, from its saved state.
func (w *Worker) run(ctx context.Context, j store.DownloadJob) {
	var req Request
	var st State
	var name string
	_ = json.Unmarshal([]byte(j.State), &st)
	finish := func(status, reason string) {
		_ = w.DB.FinishDownloadJob(context.WithoutCancel(ctx), j.ID, w.holder, status, reason)
		if w.Finished != nil {
			w.Finished(context.WithoutCancel(ctx), j, status, reason, name, st)
		}
	}
	if err := json.Unmarshal([]byte(j.Request), &req); err != nil {
		finish(store.DownloadFailed, "the request is unreadable")
		return
	}
	key := ""
	if w.Key != nil {
		var err error
		if key, err = w.Key(ctx, j.UserID, req.Source); err != nil {
			finish(store.DownloadFailed, "the API key could not be read")
			return
		}
	}
	res, err := Resolve(ctx, w.Client, w.Bases, req, key)
	if err != nil {
		finish(store.DownloadFailed, err.Error())
		return
	}
	name = res.Name
	dst, err := w.Dest(ctx, j, res.Name)
	if err != nil {
		finish(store.DownloadFailed, err.Error())
		return
	}
	err = Run(ctx, w.Client, res.Source, dst, &st, func(s State) error {
		raw, _ := json.Marshal(s)
		held, stop, err := w.DB.SaveDownloadProgress(ctx, j.ID, w.holder, string(raw), s.Done, s.Total, time.Now().Add(w.Lease))
		switch {
		case err != nil:
			return nil // the database is away: go on, the next part tries again
		case stop:
			return ErrCancelled
		case !held:
			return errLost
		}
		return nil
	})
	switch {
	case err == nil:
		finish(store.DownloadDone, "")
	case errors.Is(err, ErrCancelled):
		finish(store.DownloadCancelled, "")
	case errors.Is(err, errLost):
		// Another process has the job (this one's lease ran out): it goes on from there.
	case ctx.Err() != nil:
		// This process is stopping: the job stays running under its lease, and another process
		// (or this one after a restart) goes on from the saved state when it runs out.
	case errors.Is(err, ErrChecksum), errors.Is(err, ErrSize), errors.Is(err, ErrExists):
		finish(store.DownloadFailed, err.Error())
	default:
		var se *StatusError
		if errors.As(err, &se) && se.Code < 500 {
			finish(store.DownloadFailed, err.Error())
			return
		}
		// A broken connection or a 5xx: the lease runs out and the job is claimed again, from
		// its last stored part.
		if w.Log != nil {
			w.Log.Warn("a model download was interrupted; it goes on from its last part", "job", j.ID, "error", err)
		}
	}
}
