package s3sync

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDecideWorkflow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	side := func(size int64, mt time.Time, sum string) WFSide {
		return WFSide{Exists: true, Size: size, ModTime: mt, Sum: sum}
	}
	const max = 100
	cases := []struct {
		name          string
		local, remote WFSide
		strategy      string
		want          WFAction
	}{
		{"neither", WFSide{}, WFSide{}, NewerWins, WFNone},
		{"local only", side(10, t0, ""), WFSide{}, NewerWins, WFUpload},
		{"remote only", WFSide{}, side(10, t0, "a"), S3Wins, WFDownload},
		{"local only, local_wins", side(10, t0, ""), WFSide{}, LocalWins, WFUpload},
		{"remote only, local_wins", WFSide{}, side(10, t0, "a"), LocalWins, WFDownload},
		{"same content", side(10, t0, "a"), side(10, t0.Add(time.Hour), "a"), S3Wins, WFNone},
		{"local newer", side(10, t0.Add(3*time.Second), "a"), side(10, t0, "b"), NewerWins, WFUpload},
		{"remote newer", side(10, t0, "a"), side(11, t0.Add(3*time.Second), "b"), NewerWins, WFDownload},
		{"within 2 s counts as equal", side(10, t0.Add(2*time.Second), "a"), side(11, t0, "b"), NewerWins, WFNone},
		{"within 2 s the other way", side(10, t0, "a"), side(11, t0.Add(1500*time.Millisecond), "b"), NewerWins, WFNone},
		{"local_wins over a newer remote", side(10, t0, "a"), side(11, t0.Add(time.Hour), "b"), LocalWins, WFUpload},
		{"s3_wins over a newer local", side(10, t0.Add(time.Hour), "a"), side(11, t0, "b"), S3Wins, WFDownload},
		{"local too large", side(max+1, t0, ""), WFSide{}, NewerWins, WFIgnore},
		{"remote too large", WFSide{}, side(max+1, t0, "a"), NewerWins, WFIgnore},
		{"remote too large over a small local", side(10, t0, "a"), side(max+1, t0.Add(time.Hour), "b"), S3Wins, WFIgnore},
		{"exactly the limit", side(max, t0, ""), WFSide{}, NewerWins, WFUpload},
	}
	for _, c := range cases {
		r := wfRound{Strategy: c.strategy, MaxBytes: max, LocalDir: true, RemoteAny: true}
		if got := decideWorkflow(c.local, c.remote, nil, r); got != c.want {
			t.Errorf("%s: decideWorkflow = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSanitizeUser(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "Bob_2": "Bob_2", "a b/c": "a_b_c", "..": "", "": "", "é": "_",
		// Different names, one folder: users() must refuse to sync them (TestWorkflowSyncSharedFolder).
		"a b": "a_b", "a/b": "a_b", "a_b": "a_b", "a  b": "a_b", "ü": "_", "ö": "_"} {
		if got := sanitizeUser(in); got != want {
			t.Errorf("sanitizeUser(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewWorkflowSyncRejectsUnknownStrategy(t *testing.T) {
	_, err := NewWorkflowSync(Options{Bucket: "b"}, WorkflowOptions{UserDir: t.TempDir(), Strategy: "mine_wins"})
	if err == nil || !strings.Contains(err.Error(), "mine_wins") {
		t.Fatalf("err = %v, want the unknown strategy named", err)
	}
}

// TestWorkflowSyncRoundTrip runs the workflow sync against the real S3 server, for each strategy:
// a local-only file is uploaded, a remote-only one downloaded, a file changed on both sides is
// decided by the strategy, an oversize file is ignored, guest is never synced, and a second
// sync changes nothing.
func TestWorkflowSyncRoundTrip(t *testing.T) {
	for _, strategy := range []string{NewerWins, LocalWins, S3Wins} {
		t.Run(strategy, func(t *testing.T) {
			s := newServer(t)
			userDir := t.TempDir()
			// --multi-user layout: users.json maps ids to names.
			writeFile(t, filepath.Join(userDir, "users.json"), `{"alice_1":"alice","guest_2":"guest"}`, time.Now())
			wf := filepath.Join(userDir, "alice_1", "workflows")
			old := time.Now().Add(-time.Hour)
			writeFile(t, filepath.Join(wf, "local.json"), `{"local":1}`, time.Now())
			writeFile(t, filepath.Join(wf, "big.json"), strings.Repeat("x", 2048), time.Now())
			writeFile(t, filepath.Join(wf, "notes.txt"), "not a workflow", time.Now())
			writeFile(t, filepath.Join(userDir, "guest_2", "workflows", "g.json"), `{}`, time.Now())
			s.put("users/alice/workflows/remote.json", []byte(`{"remote":1}`))
			s.put("users/alice/workflows/big2.json", []byte(strings.Repeat("y", 2048)))
			// both.json: the local copy is an hour old, the object was just written.
			s.put("users/alice/workflows/both.json", []byte(`{"side":"s3"}`))
			writeFile(t, filepath.Join(wf, "both.json"), `{"side":"local"}`, old)

			w, err := NewWorkflowSync(s.options(""), WorkflowOptions{UserDir: userDir, Strategy: strategy, MaxBytes: 1024})
			if err != nil {
				t.Fatal(err)
			}
			res, err := w.SyncOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantBoth := `{"side":"s3"}` // newer_wins: the object is newer
			if strategy == LocalWins {
				wantBoth = `{"side":"local"}`
			}
			for rel, want := range map[string]string{"local.json": `{"local":1}`, "remote.json": `{"remote":1}`, "both.json": wantBoth} {
				if got, err := s.get("users/alice/workflows/" + rel); err != nil || string(got) != want {
					t.Errorf("bucket %s = %q, %v; want %q", rel, got, err, want)
				}
				if got, err := os.ReadFile(filepath.Join(wf, rel)); err != nil || string(got) != want {
					t.Errorf("local %s = %q, %v; want %q", rel, got, err, want)
				}
			}
			if _, err := s.get("users/alice/workflows/big.json"); err == nil {
				t.Error("oversize local workflow was uploaded")
			}
			if _, err := os.Stat(filepath.Join(wf, "big2.json")); err == nil {
				t.Error("oversize remote workflow was downloaded")
			}
			if _, err := s.get("users/alice/workflows/notes.txt"); err == nil {
				t.Error("a non-.json file was uploaded")
			}
			if _, err := s.get("users/guest/workflows/g.json"); err == nil {
				t.Error("guest's workflows were synced")
			}
			if res.Users != 1 || res.Ignored != 2 || res.Uploaded+res.Downloaded != 3 {
				t.Errorf("result = %+v, want 1 user, 2 ignored, 3 copied", res)
			}

			// In step now: a second sync copies nothing.
			res, err = w.SyncOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Uploaded != 0 || res.Downloaded != 0 || res.Unchanged != 3 {
				t.Errorf("second sync = %+v, want 3 unchanged and nothing copied", res)
			}

			// A workflow deleted locally is deleted in the bucket at the next sync.
			if err := os.Remove(filepath.Join(wf, "local.json")); err != nil {
				t.Fatal(err)
			}
			res, err = w.SyncOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.get("users/alice/workflows/local.json"); err == nil {
				t.Error("a locally deleted workflow is still in the bucket")
			}
			if _, err := os.Stat(filepath.Join(wf, "local.json")); err == nil {
				t.Error("a locally deleted workflow was restored from the bucket")
			}
			if res.DeletedRemote != 1 || res.Uploaded+res.Downloaded != 0 {
				t.Errorf("third sync = %+v, want 1 deleted in the bucket and nothing copied", res)
			}

			// An edit on one side only is not a conflict: it wins under every strategy.
			writeFile(t, filepath.Join(wf, "both.json"), `{"edit":"local"}`, time.Now())
			if _, err := w.SyncOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.get("users/alice/workflows/both.json"); string(got) != `{"edit":"local"}` {
				t.Errorf("a local-only edit did not reach the bucket: %q", got)
			}
			s.put("users/alice/workflows/remote.json", []byte(`{"edit":"s3"}`))
			if _, err := w.SyncOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(wf, "remote.json")); string(got) != `{"edit":"s3"}` {
				t.Errorf("a bucket-only edit did not come down: %q", got)
			}

			// Edited on both sides since: a conflict, the strategy decides (the local edit is
			// an hour older than the object).
			writeFile(t, filepath.Join(wf, "both.json"), `{"conflict":"local"}`, old)
			s.put("users/alice/workflows/both.json", []byte(`{"conflict":"s3"}`))
			if _, err := w.SyncOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := `{"conflict":"s3"}`
			if strategy == LocalWins {
				want = `{"conflict":"local"}`
			}
			got, _ := s.get("users/alice/workflows/both.json")
			gotLocal, _ := os.ReadFile(filepath.Join(wf, "both.json"))
			if string(got) != want || string(gotLocal) != want {
				t.Errorf("conflict under %s: bucket %q, local %q; want %q on both", strategy, got, gotLocal, want)
			}
		})
	}
}

func writeFile(t testing.TB, name, content string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// TestDecideWorkflowDeletions covers the baseline rules: a side deleted since the last sync
// is deleted on the other side only when that side is unchanged; a change on the other side
// wins under every strategy; no baseline, a missing folder or the size limit never delete.
func TestDecideWorkflowDeletions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const max = 100
	// In step at the last sync: 10 bytes, MD5 "m1" locally, ETag "e1" in the bucket.
	base := &wfBase{LocalSize: 10, LocalMD5: "m1", ETag: "e1", RemoteSize: 10}
	local := func(size int64, sum string) WFSide { return WFSide{Exists: true, Size: size, ModTime: t0, Sum: sum} }
	remote := func(size int64, etag string) WFSide {
		return WFSide{Exists: true, Size: size, ModTime: t0.Add(time.Hour), Sum: etag}
	}
	none := WFSide{}
	type tc struct {
		name          string
		strategy      string
		local, remote WFSide
		base          *wfBase
		localDir      bool // the local workflows folder exists
		remoteAny     bool // the bucket folder lists something
		want          WFAction
	}
	var cases []tc
	for _, st := range []string{NewerWins, LocalWins, S3Wins} {
		cases = append(cases, []tc{
			{st + ": no baseline, local missing", st, none, remote(10, "e1"), nil, true, true, WFDownload},
			{st + ": no baseline, remote missing", st, local(10, "m1"), none, nil, true, true, WFUpload},
			{st + ": deleted locally, unchanged in the bucket", st, none, remote(10, "e1"), base, true, true, WFDeleteRemote},
			{st + ": deleted in the bucket, unchanged locally", st, local(10, "m1"), none, base, true, true, WFDeleteLocal},
			{st + ": deleted locally, changed in the bucket", st, none, remote(10, "e2"), base, true, true, WFDownload},
			{st + ": deleted locally, same ETag but another size", st, none, remote(11, "e1"), base, true, true, WFDownload},
			{st + ": deleted in the bucket, changed locally", st, local(10, "m2"), none, base, true, true, WFUpload},
			{st + ": deleted in the bucket, local size changed", st, local(12, ""), none, base, true, true, WFUpload},
			{st + ": deleted in the bucket, local MD5 unknown", st, local(10, ""), none, base, true, true, WFUpload},
			{st + ": both deleted", st, none, none, base, true, true, WFNone},
			{st + ": local folder missing", st, none, remote(10, "e1"), base, false, true, WFDownload},
			{st + ": bucket folder empty", st, local(10, "m1"), none, base, true, false, WFUpload},
			{st + ": deleted locally, object over the limit", st, none, remote(max+1, "e1"), &wfBase{LocalSize: max + 1, LocalMD5: "m1", ETag: "e1", RemoteSize: max + 1}, true, true, WFIgnore},
			{st + ": deleted in the bucket, file over the limit", st, local(max+1, "m1"), none, &wfBase{LocalSize: max + 1, LocalMD5: "m1", ETag: "e1", RemoteSize: max + 1}, true, true, WFIgnore},
			{st + ": both unchanged since the baseline (multipart ETag)", st, local(10, "m1"), remote(10, "e1"), base, true, true, WFNone},
			{st + ": same content with a baseline", st, local(10, "m2"), remote(10, "m2"), base, true, true, WFNone},
			// Changed on one side only since the baseline: no conflict, whatever the strategy.
			{st + ": changed locally only", st, local(10, "m2"), remote(10, "e1"), base, true, true, WFUpload},
			{st + ": changed in the bucket only", st, local(10, "m1"), remote(10, "e2"), base, true, true, WFDownload},
		}...)
	}
	// Changed on both sides since the baseline (or no baseline): the strategy decides.
	cases = append(cases,
		tc{"both changed, s3_wins", S3Wins, local(10, "m2"), remote(10, "e2"), base, true, true, WFDownload},
		tc{"both changed, local_wins", LocalWins, local(10, "m2"), remote(10, "e2"), base, true, true, WFUpload},
		tc{"both changed, remote newer, newer_wins", NewerWins, local(10, "m2"), remote(10, "e2"), base, true, true, WFDownload},
		tc{"no baseline, differing, s3_wins", S3Wins, local(10, "m2"), remote(10, "e1"), nil, true, true, WFDownload},
		tc{"no baseline, differing, local_wins", LocalWins, local(10, "m1"), remote(10, "e2"), nil, true, true, WFUpload},
	)
	for _, c := range cases {
		r := wfRound{Strategy: c.strategy, MaxBytes: max, LocalDir: c.localDir, RemoteAny: c.remoteAny}
		if got := decideWorkflow(c.local, c.remote, c.base, r); got != c.want {
			t.Errorf("%s: decideWorkflow = %v, want %v", c.name, got, c.want)
		}
	}
}

// wfFixture is alice (local id alice_1) with a.json and b.json locally and c.json in the
// bucket, synced once, so that all three are in the baseline.
type wfFixture struct {
	s       *server
	w       *WorkflowSync
	userDir string
	wf      string // alice's local workflows folder
}

func newWFFixture(t *testing.T, strategy string) *wfFixture {
	t.Helper()
	f := &wfFixture{s: newServer(t), userDir: t.TempDir()}
	writeFile(t, filepath.Join(f.userDir, "users.json"), `{"alice_1":"alice"}`, time.Now())
	f.wf = filepath.Join(f.userDir, "alice_1", "workflows")
	writeFile(t, filepath.Join(f.wf, "a.json"), `{"a":1}`, time.Now())
	writeFile(t, filepath.Join(f.wf, "b.json"), `{"b":1}`, time.Now())
	f.s.put("users/alice/workflows/c.json", []byte(`{"c":1}`))
	var err error
	if f.w, err = NewWorkflowSync(f.s.options(""), WorkflowOptions{UserDir: f.userDir, Strategy: strategy, MaxBytes: 1024}); err != nil {
		t.Fatal(err)
	}
	res := f.sync(t)
	if res.Uploaded != 2 || res.Downloaded != 1 {
		t.Fatalf("first sync = %+v, want 2 uploaded and 1 downloaded", res)
	}
	return f
}

func (f *wfFixture) sync(t *testing.T) WorkflowResult {
	t.Helper()
	res, err := f.w.SyncOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// want checks both sides: every name in want has that content locally and in the bucket,
// every name in gone is on neither side.
func (f *wfFixture) want(t *testing.T, want map[string]string, gone ...string) {
	t.Helper()
	for n, c := range want {
		if got, err := f.s.get("users/alice/workflows/" + n); err != nil || string(got) != c {
			t.Errorf("bucket %s = %q, %v; want %q", n, got, err, c)
		}
		if got, err := os.ReadFile(filepath.Join(f.wf, n)); err != nil || string(got) != c {
			t.Errorf("local %s = %q, %v; want %q", n, got, err, c)
		}
	}
	for _, n := range gone {
		if _, err := f.s.get("users/alice/workflows/" + n); err == nil {
			t.Errorf("bucket %s still exists", n)
		}
		if _, err := os.Stat(filepath.Join(f.wf, n)); err == nil {
			t.Errorf("local %s still exists", n)
		}
	}
}

func (f *wfFixture) statePath() string { return filepath.Join(f.userDir, wfStateDir, wfStateFile) }

func (f *wfFixture) readState(t *testing.T) wfStateDoc {
	t.Helper()
	b, err := os.ReadFile(f.statePath())
	if err != nil {
		t.Fatal(err)
	}
	var d wfStateDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("state file: %v\n%s", err, b)
	}
	return d
}

// TestWorkflowSyncDeletesInBucket: a workflow deleted locally is deleted in the bucket at
// the next sync, and stays deleted; the state file is private.
func TestWorkflowSyncDeletesInBucket(t *testing.T) {
	f := newWFFixture(t, NewerWins)
	if err := os.Remove(filepath.Join(f.wf, "a.json")); err != nil {
		t.Fatal(err)
	}
	if res := f.sync(t); res.DeletedRemote != 1 || res.Deleted != 0 || res.Uploaded+res.Downloaded != 0 || res.Unchanged != 2 {
		t.Errorf("sync = %+v, want 1 deleted in the bucket, 2 unchanged", res)
	}
	f.want(t, map[string]string{"b.json": `{"b":1}`, "c.json": `{"c":1}`}, "a.json")
	if res := f.sync(t); res.DeletedRemote+res.Deleted+res.Uploaded+res.Downloaded != 0 {
		t.Errorf("sync after the deletion = %+v, want nothing done", res)
	}
	f.want(t, nil, "a.json")

	d := f.readState(t)
	if _, ok := d.Users["alice_1"].Files["a.json"]; ok || len(d.Users["alice_1"].Files) != 2 {
		t.Errorf("baseline = %+v, want b.json and c.json", d.Users["alice_1"].Files)
	}
	for name, mode := range map[string]os.FileMode{f.statePath(): 0o600, filepath.Dir(f.statePath()): 0o700} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", name, fi.Mode().Perm(), err, mode)
		}
	}
}

// TestWorkflowSyncDeletesLocally: an object deleted in the bucket is deleted locally at the
// next sync, and not uploaded again.
func TestWorkflowSyncDeletesLocally(t *testing.T) {
	f := newWFFixture(t, NewerWins)
	f.s.del("users/alice/workflows/c.json")
	if res := f.sync(t); res.Deleted != 1 || res.DeletedRemote != 0 || res.Uploaded+res.Downloaded != 0 {
		t.Errorf("sync = %+v, want 1 deleted locally", res)
	}
	f.want(t, map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`}, "c.json")
	if res := f.sync(t); res.DeletedRemote+res.Deleted+res.Uploaded+res.Downloaded != 0 {
		t.Errorf("sync after the deletion = %+v, want nothing done", res)
	}
	f.want(t, nil, "c.json")
}

// TestWorkflowSyncChangeWinsOverDeletion: deleted on one side and changed on the other, the
// change is copied back under every strategy.
func TestWorkflowSyncChangeWinsOverDeletion(t *testing.T) {
	for _, strategy := range []string{NewerWins, LocalWins, S3Wins} {
		t.Run(strategy, func(t *testing.T) {
			f := newWFFixture(t, strategy)
			// a.json: deleted locally, changed in the bucket.
			if err := os.Remove(filepath.Join(f.wf, "a.json")); err != nil {
				t.Fatal(err)
			}
			f.s.put("users/alice/workflows/a.json", []byte(`{"a":"changed in the bucket"}`))
			// b.json: deleted in the bucket, changed locally (an old mtime: time plays no part).
			f.s.del("users/alice/workflows/b.json")
			writeFile(t, filepath.Join(f.wf, "b.json"), `{"b":"changed locally"}`, time.Now().Add(-24*time.Hour))
			if res := f.sync(t); res.Deleted+res.DeletedRemote != 0 || res.Downloaded != 1 || res.Uploaded != 1 {
				t.Errorf("sync = %+v, want 1 downloaded, 1 uploaded, nothing deleted", res)
			}
			f.want(t, map[string]string{"a.json": `{"a":"changed in the bucket"}`, "b.json": `{"b":"changed locally"}`, "c.json": `{"c":1}`})
		})
	}
}

// TestWorkflowSyncMissingLocalFolderDeletesNothing: when the user's workflows folder is gone
// altogether (an unmounted volume), nothing is deleted in the bucket; the folder is refilled,
// and deletions resume once the baseline is recorded again.
func TestWorkflowSyncMissingLocalFolderDeletesNothing(t *testing.T) {
	f := newWFFixture(t, NewerWins)
	if err := os.RemoveAll(f.wf); err != nil {
		t.Fatal(err)
	}
	if res := f.sync(t); res.DeletedRemote != 0 || res.Downloaded != 3 {
		t.Errorf("sync = %+v, want 3 downloaded, nothing deleted", res)
	}
	all := map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`}
	f.want(t, all)
	if d := f.readState(t); len(d.Users["alice_1"].Files) != 0 {
		t.Errorf("baseline after a missing folder = %+v, want empty", d.Users["alice_1"].Files)
	}
	f.sync(t) // both folders exist and agree: the baseline is recorded again
	if err := os.Remove(filepath.Join(f.wf, "a.json")); err != nil {
		t.Fatal(err)
	}
	if res := f.sync(t); res.DeletedRemote != 1 {
		t.Errorf("sync = %+v, want 1 deleted in the bucket", res)
	}
	f.want(t, nil, "a.json")
}

// TestWorkflowSyncEmptyBucketFolderDeletesNothing: when the user's bucket folder holds no
// workflow object at all — nothing, or only a folder marker, a .keep and a sub-folder — no local
// file is deleted; they are uploaded again.
func TestWorkflowSyncEmptyBucketFolderDeletesNothing(t *testing.T) {
	for name, markers := range map[string][]string{"empty": nil,
		"markers only": {"users/alice/workflows/", "users/alice/workflows/.keep", "users/alice/workflows/old/x.json"}} {
		t.Run(name, func(t *testing.T) {
			f := newWFFixture(t, NewerWins)
			for _, m := range markers {
				var body []byte // a folder marker must be empty
				if !strings.HasSuffix(m, "/") {
					body = []byte(`{}`)
				}
				f.s.put(m, body)
			}
			for _, n := range []string{"a.json", "b.json", "c.json"} {
				f.s.del("users/alice/workflows/" + n)
			}
			if res := f.sync(t); res.Deleted != 0 || res.Uploaded != 3 {
				t.Errorf("sync = %+v, want 3 uploaded, nothing deleted", res)
			}
			f.want(t, map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`})
		})
	}
}

// TestWorkflowSyncStateOfAnotherPrefix: a state file written for another prefix is no
// baseline: nothing is deleted, and the state is rewritten for this remote.
func TestWorkflowSyncStateOfAnotherPrefix(t *testing.T) {
	f := newWFFixture(t, NewerWins)
	d := f.readState(t)
	if d.Remote != f.w.remoteID() || len(d.Users["alice_1"].Files) != 3 {
		t.Fatalf("state = %+v, want this remote and 3 files", d)
	}
	d.Remote.Prefix = "elsewhere/"
	b, _ := json.Marshal(d)
	if err := os.WriteFile(f.statePath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.wf, "a.json")); err != nil {
		t.Fatal(err)
	}
	if res := f.sync(t); res.DeletedRemote != 0 || res.Downloaded != 1 {
		t.Errorf("sync = %+v, want a.json downloaded, nothing deleted", res)
	}
	f.want(t, map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`})
	if d := f.readState(t); d.Remote != f.w.remoteID() || len(d.Users["alice_1"].Files) != 3 {
		t.Errorf("state after the sync = %+v, want this remote and 3 files", d)
	}
}

// TestWorkflowSyncCorruptState: a corrupt state file fails nothing and deletes nothing, and is
// replaced by a good one.
func TestWorkflowSyncCorruptState(t *testing.T) {
	f := newWFFixture(t, NewerWins)
	if err := os.WriteFile(f.statePath(), []byte(`{"version":1,"users":{"alice_1":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.wf, "a.json")); err != nil {
		t.Fatal(err)
	}
	f.s.del("users/alice/workflows/c.json")
	if res := f.sync(t); res.Deleted+res.DeletedRemote != 0 || res.Downloaded != 1 || res.Uploaded != 1 {
		t.Errorf("sync = %+v, want a.json downloaded, c.json uploaded, nothing deleted", res)
	}
	f.want(t, map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`})
	if d := f.readState(t); d.Version != wfStateVersion || d.Remote != f.w.remoteID() || len(d.Users["alice_1"].Files) != 3 {
		t.Errorf("state after the sync = %+v, want version %d, this remote and 3 files", d, wfStateVersion)
	}
}

// TestWorkflowRunSyncsAtStop: a workflow saved after the last round still reaches the bucket
// when the sidecar is stopped (an emptyDir user directory would lose it), and the metrics
// count what the rounds did.
func TestWorkflowRunSyncsAtStop(t *testing.T) {
	f := newWFFixture(t, NewerWins) // one round: 2 uploaded, 1 downloaded
	f.w.w.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.w.Run(ctx) }()
	// Run's first round finds everything in step; wait for it before saving.
	deadline := time.Now().Add(10 * time.Second)
	for roundsSeen(f.w) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Run's first round did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	writeFile(t, filepath.Join(f.wf, "late.json"), `{"late":1}`, time.Now())
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	f.want(t, map[string]string{"late.json": `{"late":1}`})
	if got := testutil.ToFloat64(f.w.metrics.files.WithLabelValues("uploaded")); got != 3 {
		t.Errorf("uploaded counter = %v, want 3 (2 at the first sync, late.json at stop)", got)
	}
	if got := testutil.ToFloat64(f.w.metrics.files.WithLabelValues("downloaded")); got != 1 {
		t.Errorf("downloaded counter = %v, want 1", got)
	}
}

// roundsSeen counts the workflow syncs that ended (the fixture's, then Run's).
func roundsSeen(w *WorkflowSync) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rounds
}

// logLines collects a WorkflowSync's log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// count is how many lines contain all of subs.
func (l *logLines) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// workflowSync is a WorkflowSync of userDir against s (size limit 1 KiB), and its log.
func (s *server) workflowSync(t *testing.T, userDir string) (*WorkflowSync, *logLines) {
	t.Helper()
	log := &logLines{}
	o := s.options("")
	o.Logf = log.logf
	w, err := NewWorkflowSync(o, WorkflowOptions{UserDir: userDir, MaxBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	return w, log
}

// bucketKeys lists every key under the prefix (without it).
func (s *server) bucketKeys(t *testing.T) []string {
	t.Helper()
	var out []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(s.opts.keyPrefix())})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Contents {
			out = append(out, strings.TrimPrefix(aws.ToString(c.Key), s.opts.keyPrefix()))
		}
	}
	sort.Strings(out)
	return out
}

// TestWorkflowSyncSharedFolder: users whose names sanitize to one bucket folder ("a b" and
// "a/b" → a_b), or differ only in case (Dave, dave: one folder on a case-insensitive
// gateway), are all left out — nothing uploaded, downloaded or deleted for them — and it is
// logged once per folder; the other users are synced.
func TestWorkflowSyncSharedFolder(t *testing.T) {
	s := newServer(t)
	userDir := t.TempDir()
	writeFile(t, filepath.Join(userDir, "users.json"),
		`{"ab_1":"a b","ab_2":"a/b","dave_1":"Dave","dave_2":"dave","carol_1":"carol"}`, time.Now())
	for _, id := range []string{"ab_1", "ab_2", "dave_1", "dave_2", "carol_1"} {
		writeFile(t, filepath.Join(userDir, id, "workflows", id+".json"), `{"id":"`+id+`"}`, time.Now())
	}
	// a_b's folder already holds a workflow: it must not be deleted, nor downloaded to either.
	s.put("users/a_b/workflows/shared.json", []byte(`{"shared":1}`))
	w, log := s.workflowSync(t, userDir)
	for round := 1; round <= 2; round++ {
		res, err := w.SyncOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Users != 1 || res.Uploaded != map[int]int{1: 1, 2: 0}[round] || res.Downloaded+res.Deleted+res.DeletedRemote != 0 {
			t.Errorf("sync %d = %+v, want carol only (1 user, her workflow uploaded once)", round, res)
		}
	}
	if got, want := s.bucketKeys(t), []string{"users/a_b/workflows/shared.json", "users/carol/workflows/carol_1.json"}; !slices.Equal(got, want) {
		t.Errorf("bucket = %v, want %v", got, want)
	}
	for _, id := range []string{"ab_1", "ab_2"} {
		if _, err := os.Stat(filepath.Join(userDir, id, "workflows", "shared.json")); err == nil {
			t.Errorf("%s got the shared folder's workflow", id)
		}
	}
	if n := log.count(`"a b"`, `"a/b"`, "users/a_b/"); n != 1 {
		t.Errorf("%d log lines name a b and a/b, want 1: %q", n, log.lines)
	}
	if n := log.count(`"Dave"`, `"dave"`); n != 1 {
		t.Errorf("%d log lines name Dave and dave, want 1: %q", n, log.lines)
	}
}

// TestWorkflowSyncKeepsLocalSaveDuringDownload: a file saved locally while its object was
// coming down (here by the hook right before the target is checked) is not overwritten; the
// download is dropped, and the next sync uploads the saved file. Both when the file was
// absent at the listing (a new object) and when it was there (an object changed in the bucket).
func TestWorkflowSyncKeepsLocalSaveDuringDownload(t *testing.T) {
	for _, c := range []struct{ name, file string }{{"absent when listed", "d.json"}, {"present when listed", "c.json"}} {
		t.Run(c.name, func(t *testing.T) {
			f := newWFFixture(t, NewerWins)
			f.s.put("users/alice/workflows/"+c.file, []byte(`{"from":"bucket"}`))
			const saved = `{"from":"ComfyUI, saved during the download"}`
			calls := 0
			f.w.beforePlace = func(target string) {
				calls++
				if filepath.Base(target) != c.file {
					t.Errorf("beforePlace(%s), want %s", target, c.file)
				}
				// A save a minute after the object was written: newer_wins picks it.
				writeFile(t, target, saved, time.Now().Add(time.Minute))
			}
			res := f.sync(t)
			if calls != 1 || res.Deferred != 1 || res.Downloaded != 0 || res.Uploaded != 0 {
				t.Errorf("sync = %+v with %d downloads; want 1 download, deferred", res, calls)
			}
			if got, err := os.ReadFile(filepath.Join(f.wf, c.file)); err != nil || string(got) != saved {
				t.Errorf("local %s = %q, %v; want the local save %q", c.file, got, err, saved)
			}
			if tmps, _ := filepath.Glob(filepath.Join(f.wf, ".wf-*")); len(tmps) != 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
			f.w.beforePlace = nil
			if res := f.sync(t); res.Uploaded != 1 || res.Downloaded+res.Deferred+res.Deleted+res.DeletedRemote != 0 {
				t.Errorf("next sync = %+v, want the local save uploaded", res)
			}
			f.want(t, map[string]string{c.file: saved})
		})
	}
}

// TestWorkflowDownloadOverLimit: an object that grew past the size limit after the listing
// fails its download, and nothing is written.
func TestWorkflowDownloadOverLimit(t *testing.T) {
	s := newServer(t)
	userDir := t.TempDir()
	wf := filepath.Join(userDir, "u", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		t.Fatal(err)
	}
	s.put("users/u/workflows/big.json", []byte(strings.Repeat("x", 1025)))
	w, _ := s.workflowSync(t, userDir)
	root, err := os.OpenRoot(userDir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	d := &wfDir{path: wf}
	defer d.close()
	if d.home, err = openDirNoFollow(root, "u"); err != nil {
		t.Fatal(err)
	}
	if d.dir, err = openDirNoFollow(d.home, "workflows"); err != nil {
		t.Fatal(err)
	}
	nb, placed, err := w.downloadTo(context.Background(), s.opts.keyPrefix()+"users/u/workflows/big.json", d, "big.json", WFSide{})
	if err == nil || placed || nb != nil {
		t.Errorf("downloadTo = %+v, %v, %v; want an error", nb, placed, err)
	}
	if es, _ := os.ReadDir(wf); len(es) != 0 {
		t.Errorf("files written: %v", es)
	}
}

// TestWorkflowSyncFolders: the user's own folder is never created; until ComfyUI creates it
// nothing is downloaded for the user (logged once). Then workflows/ is created in it, 0775
// whatever the umask and keeping an fsGroup volume's setgid bit, and files come down 0664.
func TestWorkflowSyncFolders(t *testing.T) {
	s := newServer(t)
	userDir := t.TempDir()
	writeFile(t, filepath.Join(userDir, "users.json"), `{"alice_1":"alice"}`, time.Now())
	s.put("users/alice/workflows/flow.json", []byte(`{"flow":1}`))
	w, log := s.workflowSync(t, userDir)
	home := filepath.Join(userDir, "alice_1")
	for range 2 {
		res, err := w.SyncOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Downloaded+res.Uploaded+res.Deleted+res.DeletedRemote != 0 {
			t.Errorf("sync without the user's folder = %+v, want nothing done", res)
		}
		if _, err := os.Lstat(home); err == nil {
			t.Fatalf("%s was created", home)
		}
	}
	if n := log.count(home, "does not exist"); n != 1 {
		t.Errorf("%d log lines about %s, want 1: %q", n, home, log.lines)
	}
	if got := s.bucketKeys(t); !slices.Equal(got, []string{"users/alice/workflows/flow.json"}) {
		t.Errorf("bucket = %v, want flow.json only", got)
	}

	// ComfyUI creates the user's folder (setgid, as on an fsGroup volume).
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o755|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	res, err := w.SyncOnce(context.Background())
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != 1 {
		t.Errorf("sync = %+v, want flow.json downloaded", res)
	}
	wf := filepath.Join(home, "workflows")
	if fi, err := os.Stat(wf); err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSetgid) != 0o775|fs.ModeSetgid {
		t.Errorf("%s: %v, %v; want 0775 and setgid", wf, fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(wf, "flow.json")); err != nil || fi.Mode().Perm() != 0o664 {
		t.Errorf("flow.json: %v, %v; want mode 0664", fi.Mode(), err)
	}
	if got, err := os.ReadFile(filepath.Join(wf, "flow.json")); err != nil || string(got) != `{"flow":1}` {
		t.Errorf("flow.json = %q, %v", got, err)
	}
}

// TestWorkflowSyncDoesNotFollowSymlinks: code in ComfyUI can plant symbolic links in the user
// directory; the sidecar, which may write where ComfyUI cannot (the model volume), never
// follows them. A link in place of <id>/ or <id>/workflows/ (out of the user directory, or
// to another folder in it) leaves the user out: nothing there is uploaded, written or
// deleted, nothing is downloaded into it, nothing is deleted in the bucket, and the baseline
// is kept. A link in place of a workflow file is skipped: not uploaded, and the object of
// that name does not come down through it, also when the link appears during the download.
// A link in place of .mss-login/ is neither read (its baseline would delete a.json in the
// bucket) nor written.
func TestWorkflowSyncDoesNotFollowSymlinks(t *testing.T) {
	bucketWant := map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`, "d.json": `{"d":1}`}
	checkBucket := func(t *testing.T, f *wfFixture, want map[string]string) {
		t.Helper()
		var keys []string
		for n, c := range want {
			keys = append(keys, "users/alice/workflows/"+n)
			if got, err := f.s.get("users/alice/workflows/" + n); err != nil || string(got) != c {
				t.Errorf("bucket %s = %q, %v; want %q", n, got, err, c)
			}
		}
		sort.Strings(keys)
		if got := f.s.bucketKeys(t); !slices.Equal(got, keys) {
			t.Errorf("bucket = %v, want %v", got, keys)
		}
	}
	outsideTree := func(t *testing.T, dir string, want map[string]string) {
		t.Helper()
		if got := tree(t, dir); !maps.Equal(got, want) {
			t.Errorf("%s (a link's target) = %v, want %v", dir, got, want)
		}
	}

	for _, c := range []struct {
		name string
		link string // relative to the user directory
		// plant makes the link's target, holding a.json, and returns it and the folder that
		// must be left as it is (outside is a folder out of the user directory).
		plant func(f *wfFixture, outside string) (target, watched string)
	}{
		{"workflows folder out of the user directory", "alice_1/workflows", func(_ *wfFixture, outside string) (string, string) {
			writeFile(t, filepath.Join(outside, "workflows", "a.json"), `{"outside":1}`, time.Now())
			return filepath.Join(outside, "workflows"), outside
		}},
		{"user folder out of the user directory", "alice_1", func(_ *wfFixture, outside string) (string, string) {
			writeFile(t, filepath.Join(outside, "alice", "workflows", "a.json"), `{"outside":1}`, time.Now())
			return filepath.Join(outside, "alice"), outside
		}},
		{"workflows folder to another user's in the user directory", "alice_1/workflows", func(f *wfFixture, _ string) (string, string) {
			writeFile(t, filepath.Join(f.userDir, "bob_2", "workflows", "a.json"), `{"outside":1}`, time.Now())
			return "../bob_2/workflows", filepath.Join(f.userDir, "bob_2")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newWFFixture(t, NewerWins) // a, b, c on both sides and in the baseline
			f.s.put("users/alice/workflows/d.json", []byte(`{"d":1}`))
			target, watched := c.plant(f, t.TempDir())
			before := tree(t, watched)
			link := filepath.Join(f.userDir, c.link)
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			var log logLines
			f.w.o.Logf = log.logf
			for range 2 {
				if res := f.sync(t); res.Users != 1 || res.Uploaded+res.Downloaded+res.Deleted+res.DeletedRemote+res.Deferred != 0 {
					t.Errorf("sync = %+v, want nothing done", res)
				}
			}
			checkBucket(t, f, bucketWant)
			outsideTree(t, watched, before)
			if n := log.count(link, "symbolic link"); n != 1 {
				t.Errorf("%d log lines about the link %s, want 1: %q", n, link, log.lines)
			}
			if d := f.readState(t); len(d.Users["alice_1"].Files) != 3 {
				t.Errorf("baseline = %+v, want a, b and c kept", d.Users["alice_1"].Files)
			}
		})
	}

	t.Run("workflow file", func(t *testing.T) {
		f := newWFFixture(t, NewerWins)
		outside := t.TempDir()
		writeFile(t, filepath.Join(outside, "secret.json"), `{"secret":1}`, time.Now())
		writeFile(t, filepath.Join(outside, "other.json"), `{"other":1}`, time.Now())
		// e.json: a link, and an object of that name in the bucket; f.json: a link only.
		f.s.put("users/alice/workflows/e.json", []byte(`{"e":"bucket"}`))
		for n, target := range map[string]string{"e.json": "secret.json", "f.json": "other.json"} {
			if err := os.Symlink(filepath.Join(outside, target), filepath.Join(f.wf, n)); err != nil {
				t.Fatal(err)
			}
		}
		// g.json: a new object; the link appears while it is coming down.
		f.s.put("users/alice/workflows/g.json", []byte(`{"g":"bucket"}`))
		f.w.beforePlace = func(target string) {
			if err := os.Symlink(filepath.Join(outside, "secret.json"), target); err != nil {
				t.Error(err)
			}
		}
		if res := f.sync(t); res.Uploaded+res.Downloaded+res.Deleted+res.DeletedRemote != 0 || res.Deferred != 1 {
			t.Errorf("sync = %+v, want g.json deferred and nothing else done", res)
		}
		f.w.beforePlace = nil
		if res := f.sync(t); res.Uploaded+res.Downloaded+res.Deleted+res.DeletedRemote+res.Deferred != 0 {
			t.Errorf("second sync = %+v, want nothing done", res)
		}
		checkBucket(t, f, map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`,
			"e.json": `{"e":"bucket"}`, "g.json": `{"g":"bucket"}`})
		outsideTree(t, outside, map[string]string{"secret.json": `{"secret":1}`, "other.json": `{"other":1}`})
		for _, n := range []string{"e.json", "f.json", "g.json"} {
			if fi, err := os.Lstat(filepath.Join(f.wf, n)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("%s: %v, %v; want the link left alone", n, fi, err)
			}
		}
	})

	t.Run("state folder", func(t *testing.T) {
		f := newWFFixture(t, NewerWins)
		// The real baseline moves out of the user directory and a link to it takes its place.
		outside := t.TempDir()
		moved := filepath.Join(outside, "state")
		if err := os.Rename(filepath.Join(f.userDir, wfStateDir), moved); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(moved, filepath.Join(f.userDir, wfStateDir)); err != nil {
			t.Fatal(err)
		}
		before := tree(t, outside)
		fi, err := os.Stat(filepath.Join(moved, wfStateFile))
		if err != nil {
			t.Fatal(err)
		}
		var log logLines
		f.w.o.Logf = log.logf
		if err := os.Remove(filepath.Join(f.wf, "a.json")); err != nil {
			t.Fatal(err)
		}
		// Without a baseline a.json is not deleted in the bucket: it comes back.
		if res := f.sync(t); res.DeletedRemote != 0 || res.Downloaded != 1 {
			t.Errorf("sync = %+v, want a.json downloaded, nothing deleted", res)
		}
		f.want(t, map[string]string{"a.json": `{"a":1}`, "b.json": `{"b":1}`, "c.json": `{"c":1}`})
		outsideTree(t, outside, before)
		if now, err := os.Stat(filepath.Join(moved, wfStateFile)); err != nil || !now.ModTime().Equal(fi.ModTime()) || !os.SameFile(fi, now) {
			t.Errorf("the state file out of the user directory was replaced or changed: %v", err)
		}
		if n := log.count(wfStateDir, "symbolic link"); n < 1 {
			t.Errorf("no log line about the linked %s: %q", wfStateDir, log.lines)
		}
	})
}

// Another pod writes the object between this sidecar's listing and its write: the conditional
// upload and delete (If-None-Match / If-Match) leave that change alone, and the next sync
// decides with it in view.
func TestWorkflowWritesAreConditional(t *testing.T) {
	f := newWFFixture(t, LocalWins)
	root, err := os.OpenRoot(f.wf)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	key := f.w.o.keyPrefix() + "users/alice/workflows/"

	// Listed absent, created meanwhile by another pod.
	writeFile(t, filepath.Join(f.wf, "new.json"), `{"mine":1}`, time.Now())
	f.s.put("users/alice/workflows/new.json", []byte(`{"theirs":1}`))
	if nb, sent, err := f.w.upload(context.Background(), root, "new.json", key+"new.json", WFSide{}); err != nil || sent || nb != nil {
		t.Fatalf("upload over an object created meanwhile: sent %v, %v", sent, err)
	}
	// Listed with one ETag, replaced meanwhile.
	if nb, sent, err := f.w.upload(context.Background(), root, "a.json", key+"a.json", WFSide{Exists: true, Sum: "0123456789abcdef0123456789abcdef"}); err != nil || sent || nb != nil {
		t.Fatalf("upload over an object changed meanwhile: sent %v, %v", sent, err)
	}
	if done, err := f.w.deleteRemote(context.Background(), key+"c.json", WFSide{Exists: true, Sum: "0123456789abcdef0123456789abcdef"}); err != nil || done {
		t.Fatalf("delete of an object changed meanwhile: done %v, %v", done, err)
	}
	f.want(t, map[string]string{"a.json": `{"a":1}`, "c.json": `{"c":1}`})
	if got, _ := f.s.get("users/alice/workflows/new.json"); string(got) != `{"theirs":1}` {
		t.Fatalf("the other pod's object was overwritten: %s", got)
	}

	// With the right listing the writes go through.
	if _, sent, err := f.w.upload(context.Background(), root, "new.json", key+"new.json", WFSide{Exists: true, Sum: md5hex(`{"theirs":1}`)}); err != nil || !sent {
		t.Fatalf("upload with the current ETag: sent %v, %v", sent, err)
	}
	if done, err := f.w.deleteRemote(context.Background(), key+"c.json", WFSide{Exists: true, Sum: md5hex(`{"c":1}`)}); err != nil || !done {
		t.Fatalf("delete with the current ETag: done %v, %v", done, err)
	}
	if done, err := f.w.deleteRemote(context.Background(), key+"gone.json", WFSide{Exists: true, Sum: md5hex("x")}); err != nil || !done {
		t.Fatalf("delete of an object already gone: done %v, %v", done, err)
	}
	if f.w.uncond {
		t.Fatal("versitygw implements conditional writes, yet the sync fell back to unconditional ones")
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
