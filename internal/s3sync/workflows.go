package s3sync

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Workflow sync: the original's s3_storage.workflow_sync. ComfyUI keeps each --multi-user
// user's workflows in <user dir>/<user id>/workflows/*.json (users.json in the user dir maps
// ids to names); they are kept in step with <prefix>/users/<sanitized username>/workflows/.
//
// Per file: one-sided files are copied across; when both sides differ in content the
// conflict strategy decides (newer_wins compares the local mtime with the object's
// last-modified time, within 2 s counting as equal and then nothing happens). Files larger
// than the size limit on either side are ignored. Deletions are NOT propagated, as in the
// original: a workflow deleted on one side comes back from the other on the next sync.
// Only the top level of each workflows folder is synced; the guest user is never synced.

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

// WFAction is what to do with one workflow file.
type WFAction int

const (
	WFNone     WFAction = iota // in step, or equal mtimes under newer_wins
	WFUpload                   // local → bucket
	WFDownload                 // bucket → local
	WFIgnore                   // too large on a side
)

func (a WFAction) String() string {
	return [...]string{"none", "upload", "download", "ignore"}[a]
}

// decideWorkflow is the whole conflict rule, without I/O.
func decideWorkflow(local, remote WFSide, strategy string, maxBytes int64) WFAction {
	if (local.Exists && local.Size > maxBytes) || (remote.Exists && remote.Size > maxBytes) {
		return WFIgnore
	}
	switch {
	case !local.Exists && !remote.Exists:
		return WFNone
	case !remote.Exists:
		return WFUpload
	case !local.Exists:
		return WFDownload
	case local.Size == remote.Size && local.Sum != "" && local.Sum == remote.Sum:
		return WFNone
	}
	switch strategy {
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

// WorkflowResult counts what one workflow sync did.
type WorkflowResult struct {
	Users, Uploaded, Downloaded, Ignored, Unchanged int
}

// WorkflowSync keeps the users' workflows in step with the bucket.
type WorkflowSync struct {
	o      Options
	w      WorkflowOptions
	client *s3.Client
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
	return &WorkflowSync{o: o, w: w, client: newClient(&o)}, nil
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
// sub-directory as its own name (single-user ComfyUI has "default").
func (w *WorkflowSync) users() (map[string]string, error) {
	out := map[string]string{}
	b, err := os.ReadFile(filepath.Join(w.w.UserDir, "users.json"))
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
		es, err := os.ReadDir(w.w.UserDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range es {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				out[e.Name()] = e.Name()
			}
		}
	default:
		return nil, err
	}
	for id, name := range out {
		s := sanitizeUser(name)
		if s == "" || strings.EqualFold(s, "guest") || id != filepath.Base(id) || id == "." || id == ".." || id == "" {
			delete(out, id)
			continue
		}
		out[id] = s
	}
	return out, nil
}

// SyncOnce syncs every user's workflows once. A failing user or file is logged and counted in
// the error; the others go on.
func (w *WorkflowSync) SyncOnce(ctx context.Context) (WorkflowResult, error) {
	var res WorkflowResult
	users, err := w.users()
	if err != nil {
		return res, err
	}
	ids := make([]string, 0, len(users))
	for id := range users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		res.Users++
		if err := w.syncUser(ctx, id, users[id], &res); err != nil {
			w.o.Logf("s3sync: workflows of %q: %v", users[id], err)
			errs = append(errs, fmt.Errorf("%s: %w", users[id], err))
		}
	}
	return res, errors.Join(errs...)
}

func (w *WorkflowSync) syncUser(ctx context.Context, id, user string, res *WorkflowResult) error {
	dir := filepath.Join(w.w.UserDir, id, "workflows")
	prefix := w.o.keyPrefix() + "users/" + user + "/workflows/"
	local, err := localWorkflows(dir)
	if err != nil {
		return err
	}
	remote := map[string]WFSide{}
	p := s3.NewListObjectsV2Paginator(w.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(w.o.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return wrap("ListObjectsV2", w.o.Bucket, err)
		}
		for _, c := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(c.Key), prefix)
			if !isWorkflowName(name) {
				continue
			}
			remote[name] = WFSide{Exists: true, Size: aws.ToInt64(c.Size), ModTime: aws.ToTime(c.LastModified),
				Sum: strings.Trim(aws.ToString(c.ETag), `"`)}
		}
	}
	names := map[string]bool{}
	for n := range local {
		names[n] = true
	}
	for n := range remote {
		names[n] = true
	}
	var errs []error
	for n := range names {
		l := local[n]
		if l.Exists && l.Size == remote[n].Size && remote[n].Exists {
			l.Sum, _ = fileMD5(filepath.Join(dir, n))
		}
		var err error
		switch a := decideWorkflow(l, remote[n], w.w.Strategy, w.w.MaxBytes); a {
		case WFNone:
			res.Unchanged++
		case WFIgnore:
			res.Ignored++
		case WFUpload:
			if err = w.upload(ctx, filepath.Join(dir, n), prefix+n); err == nil {
				res.Uploaded++
			}
		case WFDownload:
			if err = w.downloadTo(ctx, prefix+n, dir, n); err == nil {
				res.Downloaded++
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

func isWorkflowName(n string) bool {
	return strings.HasSuffix(strings.ToLower(n), ".json") && !strings.ContainsAny(n, `/\`) &&
		!strings.HasPrefix(n, ".") && n == filepath.Base(n)
}

// localWorkflows lists the regular *.json files at the top of dir (none when dir is missing).
func localWorkflows(dir string) (map[string]WFSide, error) {
	out := map[string]WFSide{}
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if !e.Type().IsRegular() || !isWorkflowName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out[e.Name()] = WFSide{Exists: true, Size: fi.Size(), ModTime: fi.ModTime()}
	}
	return out, nil
}

func fileMD5(name string) (string, error) {
	f, err := os.Open(name)
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

func (w *WorkflowSync) upload(ctx context.Context, name, key string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key),
		Body: f, ContentType: aws.String("application/json")})
	return wrap("PutObject", w.o.Bucket, err)
}

// downloadTo writes the object to dir/name through a temporary file in dir, and gives it the
// object's last-modified time so that newer_wins sees both sides as equal afterwards.
func (w *WorkflowSync) downloadTo(ctx context.Context, key, dir, name string) error {
	out, err := w.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)})
	if err != nil {
		return wrap("GetObject", w.o.Bucket, err)
	}
	defer out.Body.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".wf-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if mt := aws.ToTime(out.LastModified); !mt.IsZero() {
		_ = os.Chtimes(f.Name(), mt, mt)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// Run syncs every Interval until ctx ends; failures are logged and retried next time.
func (w *WorkflowSync) Run(ctx context.Context) error {
	t := time.NewTicker(w.w.Interval)
	defer t.Stop()
	for {
		res, err := w.SyncOnce(ctx)
		if err != nil {
			w.o.Logf("s3sync: workflow sync: %v", err)
		} else if res.Uploaded+res.Downloaded > 0 {
			w.o.Logf("s3sync: workflows: %d uploaded, %d downloaded (%d users)", res.Uploaded, res.Downloaded, res.Users)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
