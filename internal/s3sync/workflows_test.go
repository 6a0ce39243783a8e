package s3sync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		if got := decideWorkflow(c.local, c.remote, c.strategy, max); got != c.want {
			t.Errorf("%s: decideWorkflow = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSanitizeUser(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "Bob_2": "Bob_2", "a b/c": "a_b_c", "..": "", "": "", "é": "_"} {
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

			// Deletions are not propagated: a workflow deleted locally comes back.
			if err := os.Remove(filepath.Join(wf, "local.json")); err != nil {
				t.Fatal(err)
			}
			if _, err := w.SyncOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(wf, "local.json")); err != nil {
				t.Errorf("a locally deleted workflow was not restored from the bucket: %v", err)
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
