package s3sync

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
)

// Workflow sync: the original's s3_storage.workflow_sync. ComfyUI keeps each --multi-user
// user's workflows in <user dir>/<user id>/workflows/*.json (users.json in the user dir maps
// ids to names); they are kept in step with <prefix>/users/<sanitized username>/workflows/.
//
// Per file: one-sided files are copied across; a file changed on one side only since the
// baseline below is copied to the other; when both sides changed (or there is no baseline)
// the conflict strategy decides (newer_wins compares the local mtime with the object's
// last-modified time, within 2 s counting as equal and then nothing happens). Files larger
// than the size limit on either side are ignored (and never deleted). Only the top level of
// each workflows folder is synced; the guest user is never synced.
//
// Deletions are propagated, unlike the original. A baseline of what was in step at the end of
// the last sync (per user and file: local size and MD5, the object's ETag and size) is kept in
// <user dir>/.mss-login/workflow-sync-state.json. A file in the baseline that is gone on one
// side and unchanged on the other since then is deleted there too; gone on one side and
// changed on the other, the change wins and is copied back, whatever the strategy, so no
// content is lost. Without a baseline (first sync, a missing, unreadable or corrupt state
// file, or one written for another endpoint, bucket or prefix) nothing is deleted and both
// sides are merged as before. Safety: when a user's local workflows folder does not exist at
// all (an unmounted volume), or the user's bucket folder holds no workflow object (a folder
// marker or other objects do not count), nothing is deleted for that user that round and the
// user's baseline starts over, so a missing folder on either side is refilled from the other,
// never mirrored as mass deletion.
//
// Users whose names sanitize to one bucket folder (also when they differ only in case, for
// case-insensitive gateways) would share, and delete, each other's workflows: none of them is
// synced (logged once per folder). The user's <user id>/ folder is never created (ComfyUI
// creates it); workflows/ in it is, 0775, and downloaded files are 0664, so that with a pod
// fsGroup ComfyUI, as another uid, can change them. A file saved locally while its download
// was under way is kept: the download is dropped and the next sync decides again.
//
// ComfyUI, which may run untrusted code, can write in the user directory, and the sidecar may
// have write access elsewhere (the model volume). So every file access under the user
// directory goes through an os.Root opened on it once per sync, which refuses paths leading out
// of it, and symbolic links are never followed: a link in place of <user id>/ or workflows/
// leaves that user out (logged once, the baseline kept), one in place of a workflow file is
// skipped like any other non-regular file, one in place of .mss-login/ or the state file means
// no baseline is read or written (logged once).

// Conflict strategies.
const (
	NewerWins = "newer_wins"
	LocalWins = "local_wins"
	S3Wins    = "s3_wins"
)

// mtimeSlack is how far apart two mtimes may be and still count as equal (the original's 2 s).
const mtimeSlack = 2 * time.Second

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

// WFSide is one side of one workflow file; Exists false means absent.
type WFSide struct {
	Exists  bool
	Size    int64
	ModTime time.Time
	// Sum is the content's MD5 (hex) locally, the ETag (quotes removed) remotely; equal sums
	// mean equal content. A multipart ETag never equals an MD5, which only costs a copy.
	Sum string
}

// wfBase is one file's entry in the baseline: both sides as they were when last in step.
type wfBase struct {
	LocalSize  int64  `json:"local_size"`
	LocalMD5   string `json:"local_md5"`
	ETag       string `json:"etag"`
	RemoteSize int64  `json:"remote_size"`
}

// localSame: the local file is what the baseline recorded (same size and MD5).
func (b *wfBase) localSame(l WFSide) bool {
	return l.Exists && l.Size == b.LocalSize && l.Sum != "" && l.Sum == b.LocalMD5
}

// remoteSame: the object is what the baseline recorded (same ETag and size).
func (b *wfBase) remoteSame(r WFSide) bool {
	return r.Exists && r.Size == b.RemoteSize && r.Sum != "" && r.Sum == b.ETag
}

// wfRound is what decideWorkflow knows beyond the file itself. The zero value of the two
// folder flags is the safe one: no deletions.
type wfRound struct {
	Strategy string
	MaxBytes int64
	// LocalDir: the user's local workflows folder exists (it may be empty).
	LocalDir bool
	// RemoteAny: the user's bucket folder holds at least one workflow object (a folder marker
	// or another object does not count).
	RemoteAny bool
}

// WFAction is what to do with one workflow file.
type WFAction int

const (
	WFNone         WFAction = iota // in step, or equal mtimes under newer_wins
	WFUpload                       // local → bucket
	WFDownload                     // bucket → local
	WFIgnore                       // too large on a side
	WFDeleteLocal                  // deleted in the bucket, unchanged locally: delete the local file
	WFDeleteRemote                 // deleted locally, unchanged in the bucket: delete the object
)

func (a WFAction) String() string {
	return [...]string{"none", "upload", "download", "ignore", "delete-local", "delete-remote"}[a]
}

// sameContent: both sides exist with equal size and MD5 = ETag.
func sameContent(local, remote WFSide) bool {
	return local.Exists && remote.Exists && local.Size == remote.Size && local.Sum != "" && local.Sum == remote.Sum
}

// decideWorkflow is the whole rule for one file, without I/O. base is the file's baseline
// entry, nil when it has none.
func decideWorkflow(local, remote WFSide, base *wfBase, r wfRound) WFAction {
	if (local.Exists && local.Size > r.MaxBytes) || (remote.Exists && remote.Size > r.MaxBytes) {
		return WFIgnore
	}
	if !r.LocalDir || !r.RemoteAny {
		base = nil // a whole folder is missing on one side: merge, never delete
	}
	switch {
	case !local.Exists && !remote.Exists:
		return WFNone
	case !remote.Exists:
		if base != nil && base.localSame(local) {
			return WFDeleteLocal
		}
		return WFUpload // new, or changed locally since the object was deleted: the change wins
	case !local.Exists:
		if base != nil && base.remoteSame(remote) {
			return WFDeleteRemote
		}
		return WFDownload // new, or changed in the bucket since the file was deleted
	case sameContent(local, remote):
		return WFNone
	case base != nil && base.localSame(local) && base.remoteSame(remote):
		return WFNone // both untouched since they were in step (a multipart ETag never equals an MD5)
	case base != nil && base.localSame(local):
		return WFDownload // changed in the bucket only: not a conflict, the change wins
	case base != nil && base.remoteSame(remote):
		return WFUpload // changed locally only
	}
	// A conflict: changed on both sides since they were in step, or no record of that.
	switch r.Strategy {
	case LocalWins:
		return WFUpload
	case S3Wins:
		return WFDownload
	}
	d := local.ModTime.Sub(remote.ModTime)
	switch {
	case d > mtimeSlack:
		return WFUpload
	case d < -mtimeSlack:
		return WFDownload
	}
	return WFNone
}

// WorkflowResult counts what one workflow sync did. Deleted counts local files removed
// because their object was deleted, DeletedRemote objects removed because their file was.
// Deferred counts downloads dropped because the local file was saved meanwhile (the next sync
// decides again).
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

// readUsersFile reads users.json in root (a symbolic link is followed only inside root), as a
// regular file: opened without waiting for a writer should it be a FIFO.
func readUsersFile(root *os.Root) ([]byte, error) {
	f, err := root.OpenFile("users.json", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: f.Name(), Err: errors.New("not a regular file")}
	}
	return io.ReadAll(f)
}

// readDirIn lists the top of root.
func readDirIn(root *os.Root) ([]os.DirEntry, error) {
	f, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
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
	dirOK := d.dir != nil
	local, skip := map[string]WFSide{}, map[string]bool{}
	if dirOK {
		if local, skip, err = localWorkflows(d.dir); err != nil {
			return base, err
		}
	}
	remote, err := w.remoteWorkflows(ctx, prefix)
	if err != nil {
		return base, err
	}
	remoteAny := len(remote) > 0 // workflow objects only: a folder marker is not a folder's content
	r := wfRound{Strategy: w.w.Strategy, MaxBytes: w.w.MaxBytes, LocalDir: dirOK, RemoteAny: remoteAny}
	if len(base) > 0 && !dirOK {
		w.o.Logf("s3sync: workflows of %q: %s does not exist; nothing is deleted in the bucket, it is refilled", user, dir)
	} else if len(base) > 0 && !remoteAny {
		w.o.Logf("s3sync: workflows of %q: no workflow under %s in the bucket; no local file is deleted, they are uploaded", user, prefix)
	}
	names := make([]string, 0, len(local)+len(remote))
	for n := range local {
		names = append(names, n)
	}
	for n := range remote {
		if !local[n].Exists {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	next := map[string]wfBase{}
	var errs []error
	for _, n := range names {
		if skip[n] {
			// Something else than a regular file by that name: not ours, and not a deletion.
			if b, ok := base[n]; ok {
				next[n] = b
			}
			continue
		}
		l, rm := local[n], remote[n]
		var b *wfBase
		if e, ok := base[n]; ok {
			b = &e
		}
		if l.Exists && l.Size <= w.w.MaxBytes && ((rm.Exists && rm.Size == l.Size) || (b != nil && b.LocalSize == l.Size)) {
			l.Sum, _ = fileMD5(d.dir, n) // "" on error: counts as changed, never deleted
		}
		var nb *wfBase // the file's new baseline entry; nil: none
		var err error
		switch a := decideWorkflow(l, rm, b, r); a {
		case WFNone:
			res.Unchanged++
			if sameContent(l, rm) || (b != nil && b.localSame(l) && b.remoteSame(rm)) {
				nb = &wfBase{LocalSize: l.Size, LocalMD5: l.Sum, ETag: rm.Sum, RemoteSize: rm.Size}
			}
		case WFIgnore:
			res.Ignored++
		case WFUpload:
			var sent bool
			if nb, sent, err = w.upload(ctx, d.dir, n, prefix+n, rm); err == nil {
				if sent {
					res.Uploaded++
				} else {
					res.Deferred++ // the object changed since it was listed: the next sync decides
					nb = b
				}
			}
		case WFDownload:
			var placed bool
			if nb, placed, err = w.downloadTo(ctx, prefix+n, d, n, l); err == nil {
				if placed {
					res.Downloaded++
				} else {
					res.Deferred++ // saved locally meanwhile: kept, the next sync decides again
					nb = b
				}
			}
		case WFDeleteLocal:
			var done bool
			if done, err = deleteLocal(d.dir, n, l); done {
				res.Deleted++
				w.o.Logf("s3sync: workflows of %q: deleted %s (deleted in the bucket)", user, n)
			} else {
				nb = b // changed since it was listed: the next sync decides again
			}
		case WFDeleteRemote:
			var done bool
			if done, err = w.deleteRemote(ctx, prefix+n, rm); done {
				res.DeletedRemote++
				w.o.Logf("s3sync: workflows of %q: deleted %s in the bucket (deleted locally)", user, n)
			} else {
				nb = b
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			nb = b
		}
		if nb != nil {
			next[n] = *nb
		}
	}
	if !dirOK || !remoteAny {
		// A folder was missing on one side: start the baseline over once both sides exist,
		// so that a folder that comes back with other contents is merged, not mirrored.
		next = map[string]wfBase{}
	}
	return next, errors.Join(errs...)
}

// remoteWorkflows lists the workflow objects directly under prefix.
func (w *WorkflowSync) remoteWorkflows(ctx context.Context, prefix string) (map[string]WFSide, error) {
	remote := map[string]WFSide{}
	p := s3.NewListObjectsV2Paginator(w.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(w.o.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("ListObjectsV2", w.o.Bucket, err)
		}
		for _, c := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(c.Key), prefix)
			if !isWorkflowName(name) {
				continue
			}
			remote[name] = WFSide{Exists: true, Size: aws.ToInt64(c.Size), ModTime: aws.ToTime(c.LastModified),
				Sum: etag(c.ETag)}
		}
	}
	return remote, nil
}

// etag is an ETag without its quotes.
func etag(s *string) string { return strings.Trim(aws.ToString(s), `"`) }

func isWorkflowName(n string) bool {
	return strings.HasSuffix(strings.ToLower(n), ".json") && !strings.ContainsAny(n, `/\`) &&
		!strings.HasPrefix(n, ".") && n == filepath.Base(n)
}

// localWorkflows lists the regular *.json files at the top of dir (the user's workflows
// folder). skip holds workflow names that are something else (a symlink, a folder): neither
// synced nor taken as deleted.
func localWorkflows(dir *os.Root) (files map[string]WFSide, skip map[string]bool, err error) {
	files, skip = map[string]WFSide{}, map[string]bool{}
	es, err := readDirIn(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range es {
		if !isWorkflowName(e.Name()) {
			continue
		}
		fi, err := dir.Lstat(e.Name())
		if err != nil {
			continue // gone since the listing
		}
		if !fi.Mode().IsRegular() {
			skip[e.Name()] = true
			continue
		}
		files[e.Name()] = WFSide{Exists: true, Size: fi.Size(), ModTime: fi.ModTime()}
	}
	return files, skip, nil
}

// errLinked: a symbolic link was met where a folder or a regular file was expected (or the
// name was replaced while being opened); it is not followed.
var errLinked = errors.New("is a symbolic link (not followed)")

// openDirNoFollow opens the folder name (one path element) in r as an os.Root, without
// following a symbolic link: errLinked if it is one. The folder is opened through "name/." so
// that nothing else (a FIFO) can block the open, and is checked to be the one found by Lstat.
func openDirNoFollow(r *os.Root, name string) (*os.Root, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLinked}
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOTDIR}
	}
	sub, err := r.OpenRoot(name + "/.")
	if err != nil {
		return nil, err
	}
	if now, err := sub.Stat("."); err != nil || !os.SameFile(fi, now) {
		sub.Close()
		if err != nil {
			return nil, err
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLinked} // replaced meanwhile
	}
	return sub, nil
}

// openRegular opens the regular file name (one path element) in r for reading, without
// following a symbolic link (errLinked) and without waiting should it be a FIFO; the file
// opened is checked to be the one found by Lstat.
func openRegular(r *os.Root, name string) (*os.File, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLinked}
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if now, err := f.Stat(); err != nil || !os.SameFile(fi, now) {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLinked} // replaced meanwhile
	}
	return f, nil
}

// createTemp creates a new file prefix*suffix in r, mode 0600, never through an existing name
// (O_EXCL: not through a symbolic link either). It returns the file and its name in r.
func createTemp(r *os.Root, prefix, suffix string) (*os.File, string, error) {
	for range 100 {
		name := prefix + strconv.FormatUint(rand.Uint64(), 36) + suffix
		f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", &fs.PathError{Op: "createtemp", Path: prefix + "*" + suffix, Err: fs.ErrExist}
}

// wfDir is one user's folders, each opened without following a symbolic link: home is
// <user id>/, dir its workflows/ (nil while it does not exist); path is workflows/'s full name,
// for messages.
type wfDir struct {
	home, dir *os.Root
	path      string
}

// workflows is the workflows folder, created (in home, which exists) if need be.
func (d *wfDir) workflows() (*os.Root, error) {
	if d.dir == nil {
		dir, err := makeWorkflowsDir(d.home)
		if err != nil {
			return nil, err
		}
		d.dir = dir
	}
	return d.dir, nil
}

func (d *wfDir) close() {
	for _, r := range []*os.Root{d.dir, d.home} {
		if r != nil {
			r.Close()
		}
	}
}

func fileMD5(dir *os.Root, name string) (string, error) {
	f, err := openRegular(dir, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// upload puts the file at key and returns the baseline of what was sent: the bytes are read
// once, so the MD5, the size and the ETag describe the same content. The write is conditional
// on the object being as listed (absent: If-None-Match *, else If-Match its ETag), so that a
// change another pod made meanwhile is not overwritten: sent is false then.
func (w *WorkflowSync) upload(ctx context.Context, dir *os.Root, name, key string, listed WFSide) (nb *wfBase, sent bool, err error) {
	f, err := openRegular(dir, name)
	if err != nil {
		return nil, false, err
	}
	b, err := io.ReadAll(io.LimitReader(f, w.w.MaxBytes+1))
	f.Close()
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > w.w.MaxBytes {
		return nil, false, fmt.Errorf("grew past the size limit while being read")
	}
	var out *s3.PutObjectOutput
	put := func(cond bool) error {
		in := &s3.PutObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(b), ContentType: aws.String("application/json")}
		if cond && listed.Exists {
			in.IfMatch = aws.String(`"` + listed.Sum + `"`)
		} else if cond {
			in.IfNoneMatch = aws.String("*")
		}
		var err error
		out, err = w.client.PutObject(ctx, in)
		return err
	}
	if sent, err = w.conditional(put); !sent || err != nil {
		return nil, false, wrap("PutObject", w.o.Bucket, err)
	}
	sum := md5.Sum(b)
	return &wfBase{LocalSize: int64(len(b)), LocalMD5: hex.EncodeToString(sum[:]), ETag: etag(out.ETag), RemoteSize: int64(len(b))}, true, nil
}

// conditional runs a write with its precondition (write(true)): false without an error when
// the precondition failed (412). A server that does not implement preconditions (501) gets
// the write again without one, and every later write too.
func (w *WorkflowSync) conditional(write func(cond bool) error) (bool, error) {
	if !w.uncond {
		err := write(true)
		switch HTTPStatus(err) {
		case http.StatusPreconditionFailed:
			return false, nil
		case http.StatusNotImplemented:
			w.uncond = true
			w.o.Logf("s3sync: workflows: the S3 server does not implement conditional writes; writing without them " +
				"(two pods syncing one user's workflows at the same moment may overwrite each other's change)")
		default:
			return err == nil, err
		}
	}
	err := write(false)
	return err == nil, err
}

// Modes of what the workflow sync creates: group-writable, so that with a pod fsGroup ComfyUI,
// running as another uid than the sidecar, can change and replace them.
const (
	wfDirMode  fs.FileMode = 0o775
	wfFileMode fs.FileMode = 0o664
)

// downloadTo writes the object to name in d's workflows folder (created if need be) through a
// temporary file there, and gives it the object's last-modified time so that newer_wins sees
// both sides as equal afterwards. listed is the local file as it was listed: if it changed since
// (it appeared, went, or has another size or mtime — saved while the object was coming down),
// it is left alone and placed is false, without an error; the next sync decides again. An
// object over the size limit (it can grow after the listing) fails. It returns the baseline of
// what was written: its size and MD5 and the object's ETag.
func (w *WorkflowSync) downloadTo(ctx context.Context, key string, d *wfDir, name string, listed WFSide) (nb *wfBase, placed bool, err error) {
	out, err := w.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, false, wrap("GetObject", w.o.Bucket, err)
	}
	defer out.Body.Close()
	dir, err := d.workflows()
	if err != nil {
		return nil, false, err
	}
	f, tmp, err := createTemp(dir, ".wf-", ".tmp")
	if err != nil {
		return nil, false, err
	}
	defer dir.Remove(tmp)
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(out.Body, w.w.MaxBytes+1))
	if err == nil {
		err = f.Chmod(wfFileMode)
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	if n > w.w.MaxBytes {
		return nil, false, fmt.Errorf("grew past the size limit since it was listed")
	}
	if mt := aws.ToTime(out.LastModified); !mt.IsZero() {
		_ = dir.Chtimes(tmp, mt, mt)
	}
	if w.beforePlace != nil {
		w.beforePlace(filepath.Join(d.path, name))
	}
	if placed, err := placeUnlessChanged(dir, tmp, name, listed); err != nil || !placed {
		return nil, false, err
	}
	return &wfBase{LocalSize: n, LocalMD5: hex.EncodeToString(h.Sum(nil)), ETag: etag(out.ETag), RemoteSize: n}, true, nil
}

// makeWorkflowsDir creates a user's workflows folder (wfDirMode whatever the umask, keeping
// the setgid bit an fsGroup volume gives it) inside home, the user's folder, and opens it.
func makeWorkflowsDir(home *os.Root) (*os.Root, error) {
	err := home.Mkdir("workflows", wfDirMode)
	created := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	dir, err := openDirNoFollow(home, "workflows")
	if err != nil || !created {
		return dir, err
	}
	fi, err := dir.Stat(".")
	if err == nil {
		err = dir.Chmod(".", wfDirMode|fi.Mode()&fs.ModeSetgid)
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

// placeUnlessChanged moves tmp to target, both in dir, if target is still as listed: false
// without an error when it changed in between. Absent when listed, target is made a hard link
// to tmp, which cannot replace a file saved meanwhile (the caller removes tmp); on a file system
// without hard links it is checked and then renamed. Neither follows a symbolic link at target.
func placeUnlessChanged(dir *os.Root, tmp, target string, listed WFSide) (bool, error) {
	if !listed.Exists {
		err := dir.Link(tmp, target)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		if _, err := dir.Lstat(target); err == nil {
			return false, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return true, dir.Rename(tmp, target)
	}
	fi, err := dir.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // deleted meanwhile: the next sync decides again
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != listed.Size || !fi.ModTime().Equal(listed.ModTime) {
		return false, nil
	}
	return true, dir.Rename(tmp, target)
}

// deleteLocal removes name in dir if it is still the file that was listed (same size and
// mtime); false without an error when it changed in between (the next sync decides again).
func deleteLocal(dir *os.Root, name string, listed WFSide) (bool, error) {
	fi, err := dir.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != listed.Size || !fi.ModTime().Equal(listed.ModTime) {
		return false, nil
	}
	if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// deleteRemote deletes key if it still has the listed ETag (If-Match; where the server does
// not implement that, a HEAD just before); false without an error when it changed in between
// (the next sync decides again).
func (w *WorkflowSync) deleteRemote(ctx context.Context, key string, listed WFSide) (bool, error) {
	del := func(cond bool) error {
		in := &s3.DeleteObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)}
		if cond {
			in.IfMatch = aws.String(`"` + listed.Sum + `"`)
		} else {
			head, err := w.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)})
			if HTTPStatus(err) == http.StatusNotFound {
				return nil
			}
			if err != nil {
				return err
			}
			if etag(head.ETag) != listed.Sum {
				return errChanged
			}
		}
		_, err := w.client.DeleteObject(ctx, in)
		return err
	}
	done, err := w.conditional(del)
	switch {
	case errors.Is(err, errChanged):
		return false, nil
	case HTTPStatus(err) == http.StatusNotFound:
		return true, nil // gone already
	case err != nil:
		return false, wrap("DeleteObject", w.o.Bucket, err)
	}
	return done, nil
}

// errChanged: the object is not the one listed (the unconditional path's own check).
var errChanged = errors.New("changed since it was listed")

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
