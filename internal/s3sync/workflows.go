package s3sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
)

// Workflow sync: the original's s3_storage.workflow_sync. ComfyUI keeps each user's workflows
// in <user dir>/<user id>/workflows/*.json; they are kept in step with
// <prefix>/users/<sanitized username>/workflows/, deletions included, against a baseline of
// what was in step at the end of the last sync (workflowstate.go). docs/s3.md, "Workflow
// sync", has the rules and why. Each sync gathers one user's two sides and baseline, plans
// (planWorkflows, pure: wfplan.go) and applies the plan: files through safefs.go, the bucket
// through wfs3.go.

// WorkflowOptions configure a WorkflowSync (the S3 connection comes from Options).
type WorkflowOptions struct {
	// UserDir is ComfyUI's user directory (the parent of <user id>/workflows).
	UserDir string
	// Strategy: NewerWins (default), LocalWins or S3Wins.
	Strategy string
	// MaxBytes: larger workflows are ignored (default 50 MiB, the original's max_workflow_size_mb).
	MaxBytes int64
	// Interval between syncs in Run (default 120 s, the original's sync_interval_seconds).
	Interval time.Duration
}

// WorkflowResult counts what one workflow sync did. Deleted counts local files removed
// because their object was deleted, DeletedRemote objects removed because their file was.
// Deferred counts downloads dropped because the local file was saved meanwhile, and uploads
// not made because the object changed meanwhile (the next sync decides again).
type WorkflowResult struct {
	Users, Uploaded, Downloaded, Ignored, Unchanged, Deleted, DeletedRemote, Deferred int
}

// WorkflowSync keeps the users' workflows in step with the bucket.
type WorkflowSync struct {
	o      Options
	w      WorkflowOptions
	client *s3.Client

	mu      sync.Mutex      // one sync at a time: the state file is read and written whole
	noted   map[string]bool // problems already logged, each logged once
	metrics *wfMetrics
	rounds  int // syncs ended, for tests
	// uncond is set once the server answers a conditional write with 501 Not Implemented: from
	// then on writes go without If-Match / If-None-Match (logged once).
	uncond bool

	// beforePlace, when set (tests only), is called with the target path after a download is
	// written to its temporary file and before the target is checked and replaced.
	beforePlace func(target string)
}

// NewWorkflowSync checks the options; it makes no request yet.
func NewWorkflowSync(o Options, w WorkflowOptions) (*WorkflowSync, error) {
	o.defaults()
	if o.Dir == "" {
		o.Dir = w.UserDir // Dir is not used here; validate wants one
	}
	var errs []error
	if err := o.validate(); err != nil {
		errs = append(errs, err)
	}
	if w.UserDir == "" {
		errs = append(errs, errors.New("workflows: the ComfyUI user directory is required"))
	}
	switch w.Strategy {
	case "":
		w.Strategy = NewerWins
	case NewerWins, LocalWins, S3Wins:
	default:
		errs = append(errs, fmt.Errorf("workflows: conflict strategy %q: use %s, %s or %s", w.Strategy, NewerWins, LocalWins, S3Wins))
	}
	if w.MaxBytes <= 0 {
		w.MaxBytes = 50 << 20
	}
	if w.Interval <= 0 {
		w.Interval = 120 * time.Second
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &WorkflowSync{o: o, w: w, client: newClient(&o), metrics: newWFMetrics()}, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// sanitizeUser is the username as a key segment: anything but letters, digits, '_', '.', '-'
// becomes '_'; "" for names that cannot be one.
func sanitizeUser(name string) string {
	s := unsafeName.ReplaceAllString(strings.TrimSpace(name), "_")
	if s == "" || strings.Trim(s, ".") == "" {
		return ""
	}
	return s
}

// users maps local user id → sanitized username: from users.json (--multi-user), else every
// sub-directory as its own name (single-user ComfyUI has "default"). Ids whose names sanitize
// to one folder, compared ignoring case, are left out (logged once per folder): they would
// share, and delete, each other's workflows. root is the user directory.
func (w *WorkflowSync) users(root *os.Root) (map[string]string, error) {
	out := map[string]string{}
	b, err := readUsersFile(root)
	switch {
	case err == nil:
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("workflows: users.json: %w", err)
		}
		for id, name := range m {
			out[id] = name
		}
	case errors.Is(err, fs.ErrNotExist):
		es, err := readDirIn(root)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range es {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") { // a symbolic link is no directory here
				out[e.Name()] = e.Name()
			}
		}
	default:
		return nil, err
	}
	type claim struct{ ids, names, folders []string }
	claims := map[string]*claim{} // by lower-cased sanitized name
	for id, name := range out {
		s := sanitizeUser(name)
		if s == "" || strings.EqualFold(s, "guest") || id != filepath.Base(id) || id == "." || id == ".." || id == "" {
			delete(out, id)
			continue
		}
		out[id] = s
		k := strings.ToLower(s)
		if claims[k] == nil {
			claims[k] = &claim{}
		}
		c := claims[k]
		c.ids, c.names = append(c.ids, id), append(c.names, fmt.Sprintf("%q", name))
		if !slices.Contains(c.folders, s) {
			c.folders = append(c.folders, s)
		}
	}
	for k, c := range claims {
		if len(c.ids) < 2 {
			continue
		}
		for _, id := range c.ids {
			delete(out, id)
		}
		sort.Strings(c.names)
		sort.Strings(c.folders)
		w.noteOnce("collision:"+k, "s3sync: workflows: users %s all map to the bucket folder users/%s/ (names made key-safe, case ignored); none of them is synced",
			strings.Join(c.names, ", "), strings.Join(c.folders, "/ = users/"))
	}
	return out, nil
}

// SyncOnce syncs every user's workflows once. A failing user or file is logged and counted in
// the error; the others go on. The baseline is read before and written after; a problem with
// it is logged, never an error. The user directory is opened afresh each time (it may have been
// remounted since) as an os.Root, and everything under it is reached through that.
func (w *WorkflowSync) SyncOnce(ctx context.Context) (WorkflowResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var res WorkflowResult
	root, err := os.OpenRoot(w.w.UserDir)
	if errors.Is(err, fs.ErrNotExist) {
		// No user directory (an unmounted volume): no users, and it is not created.
		w.noteOnce("nouserdir", "s3sync: workflows: %v; nothing is synced until it exists", err)
		w.metrics.observe(res, nil, w.o.Now())
		w.rounds++
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer root.Close()
	users, err := w.users(root)
	if err != nil {
		return res, err
	}
	ids := make([]string, 0, len(users))
	for id := range users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	statePath := filepath.Join(w.w.UserDir, wfStateDir, wfStateFile)
	prev, problem := loadWFState(root, statePath, w.remoteID())
	if problem != "" {
		w.noteOnce("state:"+problem, "s3sync: workflows: %s; nothing is deleted this time", problem)
	}
	next := map[string]wfUserState{}
	var errs []error
	for _, id := range ids {
		res.Users++
		var base map[string]wfBase
		if st, ok := prev[id]; ok && st.User == users[id] {
			base = st.Files
		}
		files, err := w.syncUser(ctx, root, id, users[id], base, &res)
		if err != nil {
			w.o.Logf("s3sync: workflows of %q: %v", users[id], err)
			errs = append(errs, fmt.Errorf("%s: %w", users[id], err))
		}
		next[id] = wfUserState{User: users[id], Files: files}
	}
	if err := saveWFState(root, w.remoteID(), next); err != nil {
		w.noteOnce("save:"+err.Error(), "s3sync: workflows: writing the sync state: %v", err)
	}
	err = errors.Join(errs...)
	w.metrics.observe(res, err, w.o.Now())
	w.rounds++
	return res, err
}

// noteOnce logs a problem the first time it is seen.
func (w *WorkflowSync) noteOnce(key, format string, args ...any) {
	if w.noted == nil {
		w.noted = map[string]bool{}
	}
	if !w.noted[key] {
		w.noted[key] = true
		w.o.Logf(format, args...)
	}
}

// remoteID is what the baseline was recorded against.
func (w *WorkflowSync) remoteID() wfRemote {
	return wfRemote{Endpoint: w.o.Endpoint, Bucket: w.o.Bucket, Prefix: w.o.keyPrefix()}
}

// syncUser syncs one user's folder and returns the user's new baseline: the files in step now,
// and for files that failed their previous entry. base is the previous baseline (nil: none).
// root is the user directory.
func (w *WorkflowSync) syncUser(ctx context.Context, root *os.Root, id, user string, base map[string]wfBase, res *WorkflowResult) (map[string]wfBase, error) {
	home := filepath.Join(w.w.UserDir, id)
	dir := filepath.Join(home, "workflows")
	prefix := w.o.keyPrefix() + "users/" + user + "/workflows/"
	d := &wfDir{path: dir}
	defer d.close()
	var err error
	switch d.home, err = openDirNoFollow(root, id); {
	case errors.Is(err, errLinked):
		w.noteOnce("linked:"+id, "s3sync: workflows of %q: %s is a symbolic link, not followed; this user is not synced while it is", user, home)
		return base, nil
	case errors.Is(err, fs.ErrNotExist):
		// workflows/ is created for downloads, but only in the user's own folder, which
		// ComfyUI creates: never made here (it would belong to the sidecar's uid).
		w.noteOnce("nohome:"+id, "s3sync: workflows of %q: %s does not exist yet (ComfyUI creates it); nothing is downloaded for this user until it does", user, home)
		return map[string]wfBase{}, nil
	case err != nil:
		return base, err
	}
	switch d.dir, err = openDirNoFollow(d.home, "workflows"); {
	case errors.Is(err, errLinked):
		w.noteOnce("linked:"+id+"/workflows", "s3sync: workflows of %q: %s is a symbolic link, not followed; this user is not synced while it is", user, dir)
		return base, nil
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return base, err
	}
	local, remote, err := w.gather(ctx, d, prefix, base)
	if err != nil {
		return base, err
	}
	if len(base) > 0 && !local.Dir {
		w.o.Logf("s3sync: workflows of %q: %s does not exist; nothing is deleted in the bucket, it is refilled", user, dir)
	} else if len(base) > 0 && len(remote) == 0 {
		w.o.Logf("s3sync: workflows of %q: no workflow under %s in the bucket; no local file is deleted, they are uploaded", user, prefix)
	}
	return w.apply(ctx, d, user, prefix, planWorkflows(local, remote, base, w.w.Strategy, w.w.MaxBytes), res)
}

// gather lists one user's two sides: the local workflows folder (none while d.dir is nil),
// with the MD5s the rule needs, and the workflow objects under prefix.
func (w *WorkflowSync) gather(ctx context.Context, d *wfDir, prefix string, base map[string]wfBase) (wfLocal, map[string]WFSide, error) {
	local := wfLocal{Dir: d.dir != nil, Files: map[string]WFSide{}, Skip: map[string]bool{}}
	if local.Dir {
		var err error
		if local.Files, local.Skip, err = localWorkflows(d.dir); err != nil {
			return wfLocal{}, nil, err
		}
	}
	remote, err := w.remoteWorkflows(ctx, prefix)
	if err != nil {
		return wfLocal{}, nil, err
	}
	for n, l := range local.Files {
		if needSum(l, remote[n], baseOf(base, n), w.w.MaxBytes) {
			l.Sum, _ = fileMD5(d.dir, n) // "" on error: counts as changed, never deleted
			local.Files[n] = l
		}
	}
	return local, remote, nil
}

// apply carries out one user's plan (d is the user's folders, prefix the bucket folder) and
// returns the user's new baseline: p.Keep, the entries of the files the steps put in step, and
// the previous entries of those whose step failed or was deferred; none when p.Forget.
func (w *WorkflowSync) apply(ctx context.Context, d *wfDir, user, prefix string, p wfPlan, res *WorkflowResult) (map[string]wfBase, error) {
	res.Unchanged += p.Unchanged
	res.Ignored += p.Ignored
	next := p.Keep
	var errs []error
	for _, s := range p.Steps {
		nb, done, err := w.step(ctx, d, prefix+s.Name, s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
			nb = s.Base
		case !done:
			// Not as listed any more (saved locally, or changed in the bucket, meanwhile): the
			// next sync decides again.
			nb = s.Base
			if s.Action == WFUpload || s.Action == WFDownload {
				res.Deferred++
			}
		case s.Action == WFUpload:
			res.Uploaded++
		case s.Action == WFDownload:
			res.Downloaded++
		case s.Action == WFDeleteLocal:
			res.Deleted++
			w.o.Logf("s3sync: workflows of %q: deleted %s (deleted in the bucket)", user, s.Name)
		case s.Action == WFDeleteRemote:
			res.DeletedRemote++
			w.o.Logf("s3sync: workflows of %q: deleted %s in the bucket (deleted locally)", user, s.Name)
		}
		if nb != nil {
			next[s.Name] = *nb
		}
	}
	if p.Forget {
		next = map[string]wfBase{}
	}
	return next, errors.Join(errs...)
}

// step runs one step at key; done is false, without an error, when the file or the object is
// not as listed any more. nb is the file's new baseline entry after an upload or a download.
func (w *WorkflowSync) step(ctx context.Context, d *wfDir, key string, s wfStep) (nb *wfBase, done bool, err error) {
	switch s.Action {
	case WFUpload:
		return w.upload(ctx, d.dir, s.Name, key, s.Remote)
	case WFDownload:
		return w.downloadTo(ctx, key, d, s.Name, s.Local)
	case WFDeleteLocal:
		done, err = deleteLocal(d.dir, s.Name, s.Local)
	case WFDeleteRemote:
		done, err = w.deleteRemote(ctx, key, s.Remote)
	}
	return nil, done, err
}

// finalSyncTimeout bounds the sync at stop: the kubelet's grace period (30 s by default)
// covers the app's stop and then the sidecar's.
const finalSyncTimeout = 20 * time.Second

// Run syncs every Interval until ctx ends, and once more then, so that workflows saved since
// the last round reach the bucket before the pod (and an emptyDir user directory) goes.
// Failures are logged and retried next time.
func (w *WorkflowSync) Run(ctx context.Context) error {
	t := time.NewTicker(w.w.Interval)
	defer t.Stop()
	for {
		w.runOnce(ctx)
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalSyncTimeout)
			defer cancel()
			w.runOnce(final)
			return nil
		case <-t.C:
		}
	}
}

func (w *WorkflowSync) runOnce(ctx context.Context) {
	res, err := w.SyncOnce(ctx)
	if err != nil {
		w.o.Logf("s3sync: workflow sync: %v", err)
	} else if res.Uploaded+res.Downloaded+res.Deleted+res.DeletedRemote > 0 {
		w.o.Logf("s3sync: workflows: %d uploaded, %d downloaded, %d deleted locally, %d deleted in the bucket (%d users)",
			res.Uploaded, res.Downloaded, res.Deleted, res.DeletedRemote, res.Users)
	}
}

// Collectors are the workflow sync's metrics, for the sidecar's registry (Syncer.Register).
func (w *WorkflowSync) Collectors() []prometheus.Collector { return w.metrics.collectors() }
