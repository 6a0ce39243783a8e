package s3sync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Syncer fills one directory from one bucket prefix. SyncOnce and Run must not be called
// concurrently; Ready and Handler may be used from anywhere.
type Syncer struct {
	o       Options
	client  *s3.Client
	slots   chan struct{}
	metrics *metrics
	ready   atomic.Bool
	state   map[string]Entry
}

// Result says what one sync did.
type Result struct {
	Listed, Downloaded, Deleted, Unchanged, Skipped, Uploaded int
	DownloadedBytes                                           int64
	Duration                                                  time.Duration
}

// New checks o and prepares Dir (the engine's folder; leftovers of an interrupted download
// are removed here). It makes no request yet.
func New(o Options) (*Syncer, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	tmp := filepath.Join(o.Dir, metaDir, tmpDir)
	// A download killed with the process leaves its temporary file; it is never renamed.
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	state, err := loadState(o.Dir)
	if err != nil {
		o.Logf("s3sync: %v", err)
	}
	return &Syncer{o: o, client: newClient(&o), slots: make(chan struct{}, o.Concurrency), metrics: newMetrics(), state: state}, nil
}

// Ready reports whether a sync has completed since the start (the startup probe's answer).
func (s *Syncer) Ready() bool { return s.ready.Load() }

func (s *Syncer) key(rel string) string { return s.o.keyPrefix() + rel }

// list reads every object under the synced sub-prefixes, once.
func (s *Syncer) list(ctx context.Context) ([]Object, error) {
	subs := []string{"models/"}
	if s.o.Input {
		subs = append(subs, "input/")
	}
	var out []Object
	for _, sub := range subs {
		p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.o.Bucket), Prefix: aws.String(s.key(sub)),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, wrap("ListObjectsV2", s.o.Bucket, err)
			}
			for _, c := range page.Contents {
				out = append(out, Object{
					Rel: strings.TrimPrefix(aws.ToString(c.Key), s.o.keyPrefix()), Size: aws.ToInt64(c.Size),
					ETag: aws.ToString(c.ETag), LastModified: aws.ToTime(c.LastModified),
				})
			}
		}
	}
	return out, nil
}

// stat is what is on disk at rel (a regular file, or nothing).
func (s *Syncer) stat(rel string) LocalFile {
	fi, err := os.Lstat(filepath.Join(s.o.Dir, filepath.FromSlash(rel)))
	if err != nil || !fi.Mode().IsRegular() {
		return LocalFile{}
	}
	return LocalFile{Exists: true, Size: fi.Size(), ModTime: fi.ModTime()}
}

// SyncOnce lists, plans and applies one sync. Deletions happen only after a complete listing:
// a failed listing changes nothing on disk. Objects that fail to download keep their old file
// and are retried next time; the error then says how many failed.
func (s *Syncer) SyncOnce(ctx context.Context) (Result, error) {
	start := s.o.Now()
	res, err := s.syncOnce(ctx)
	res.Duration = s.o.Now().Sub(start)
	s.metrics.duration.Observe(res.Duration.Seconds())
	if err != nil {
		s.metrics.errors.Inc()
		return res, err
	}
	s.metrics.lastOK.Set(float64(s.o.Now().Unix()))
	if !s.ready.Swap(true) {
		// The marker is for exec probes and people; the HTTP endpoint says the same.
		_ = writeFileAtomic(filepath.Join(s.o.Dir, metaDir, readyMarker), []byte(s.o.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
	}
	return res, nil
}

func (s *Syncer) syncOnce(ctx context.Context) (Result, error) {
	var res Result
	remote, err := s.list(ctx)
	if err != nil {
		return res, err
	}
	res.Listed = len(remote)
	p := makePlan(remote, s.state, scopes(s.o.ModelFolders, s.o.Input), s.stat)
	res.Unchanged, res.Skipped = p.Unchanged, len(p.Skipped)
	for _, sk := range p.Skipped {
		s.o.Logf("s3sync: skipping %q: %s", sk.Rel, sk.Reason)
	}

	next := p.Keep
	var failed []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Objects start as fast as request slots free up; a large object's parts share the slots.
	objects := make(chan struct{}, s.o.Concurrency)
	for _, obj := range p.Download {
		if ctx.Err() != nil {
			break
		}
		objects <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-objects; wg.Done() }()
			e, err := s.download(ctx, obj)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				if old, ok := s.state[obj.Rel]; ok {
					next[obj.Rel] = old // the old file is still in place
				}
				return
			}
			next[obj.Rel] = e
			res.Downloaded++
			res.DownloadedBytes += e.Size
			s.metrics.downloads.Inc()
		}()
	}
	wg.Wait()

	for _, rel := range p.Delete {
		if err := s.remove(rel); err != nil {
			failed = append(failed, err)
			next[rel] = s.state[rel]
			continue
		}
		res.Deleted++
		s.metrics.deletes.Inc()
	}

	if res.Downloaded > 0 || res.Deleted > 0 || len(next) != len(s.state) {
		if err := saveState(s.o.Dir, next); err != nil {
			failed = append(failed, fmt.Errorf("saving the state: %w", err))
		}
	}
	s.state = next
	var total int64
	for _, e := range next {
		total += e.Size
	}
	s.metrics.objects.Set(float64(len(next)))
	s.metrics.bytesTotal.Set(float64(total))

	if err := s.layout(); err != nil {
		failed = append(failed, err)
	}
	if s.o.Output && ctx.Err() == nil {
		n, err := s.uploadOutput(ctx)
		res.Uploaded = n
		if err != nil {
			failed = append(failed, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%d of %d changes failed; first: %w", len(failed), len(p.Download)+len(p.Delete), failed[0])
	}
	return res, nil
}

// remove deletes a file the engine wrote and the folders that this leaves empty, up to (not
// including) the model folder itself, which ComfyUI expects to exist.
func (s *Syncer) remove(rel string) error {
	name := filepath.Join(s.o.Dir, filepath.FromSlash(rel))
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", rel, err)
	}
	sc := scopes(s.o.ModelFolders, s.o.Input)
	for d := filepath.Dir(rel); d != "." && !isScopeRoot(d, sc); d = filepath.Dir(d) {
		if os.Remove(filepath.Join(s.o.Dir, d)) != nil {
			break // not empty (or already gone): stop climbing
		}
	}
	return nil
}

func isScopeRoot(dir string, sc []string) bool {
	for _, s := range sc {
		if dir+"/" == s || dir == "models" {
			return true
		}
	}
	return false
}

// layout makes every model folder exist (ComfyUI lists them even when empty) and writes
// extra_model_paths.yaml when its content changes.
func (s *Syncer) layout() error {
	for _, f := range s.o.ModelFolders {
		if err := os.MkdirAll(filepath.Join(s.o.Dir, "models", f), 0o755); err != nil {
			return err
		}
	}
	for _, on := range []struct {
		want bool
		dir  string
	}{{s.o.Input, "input"}, {s.o.Output, "output"}} {
		if on.want {
			if err := os.MkdirAll(filepath.Join(s.o.Dir, on.dir), 0o755); err != nil {
				return err
			}
		}
	}
	want := modelPathsYAML(s.o.MountPath, s.o.ModelFolders)
	name := filepath.Join(s.o.Dir, ModelPathsFile)
	if have, err := os.ReadFile(name); err == nil && string(have) == want {
		return nil
	}
	return writeFileAtomic(name, []byte(want), 0o644)
}

// Run syncs now and then every Interval until ctx ends. A failure is retried with backoff
// (1 s doubling, at most Interval) — except errors that retrying cannot fix (a wrong
// credential, a missing bucket), which wait a full Interval. The same error is logged once,
// not on every retry. Files on disk stay as they were after the last good sync.
func (s *Syncer) Run(ctx context.Context) error {
	backoff := time.Second
	lastErr := ""
	for {
		res, err := s.SyncOnce(ctx)
		wait := s.o.Interval
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if msg := err.Error(); msg != lastErr {
				s.o.Logf("s3sync: sync failed (keeping the files as they are): %v", err)
				lastErr = msg
			}
			if !permanent(err) {
				wait = min(backoff, s.o.Interval)
				backoff *= 2
			}
		default:
			if lastErr != "" {
				s.o.Logf("s3sync: sync works again")
			}
			lastErr, backoff = "", time.Second
			s.o.Logf("s3sync: listed %d, downloaded %d (%d bytes), deleted %d, unchanged %d, uploaded %d in %s",
				res.Listed, res.Downloaded, res.DownloadedBytes, res.Deleted, res.Unchanged, res.Uploaded, res.Duration.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
