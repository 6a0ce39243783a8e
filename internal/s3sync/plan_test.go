package s3sync

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMakePlan(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	sc := scopes([]string{"checkpoints", "loras"}, false)
	obj := func(rel string, size int64, etag string, lm time.Time) Object {
		return Object{Rel: rel, Size: size, ETag: etag, LastModified: lm}
	}
	ent := func(size int64, etag string, lm time.Time) Entry {
		return Entry{Size: size, ETag: etag, LastModified: lm}
	}
	onDisk := func(size int64, mt time.Time) LocalFile { return LocalFile{Exists: true, Size: size, ModTime: mt} }
	const a = "models/checkpoints/a.safetensors"

	tests := []struct {
		name       string
		remote     []Object
		state      map[string]Entry
		disk       map[string]LocalFile
		download   []string
		deleted    []string
		unchanged  int
		skipReason string
	}{
		{name: "first sync downloads everything in scope",
			remote:   []Object{obj(a, 10, `"e1"`, t0), obj("models/loras/b", 5, `"e2"`, t0)},
			download: []string{a, "models/loras/b"}},
		{name: "same size, ETag and file on disk: nothing to do",
			remote: []Object{obj(a, 10, `"e1"`, t0)}, state: map[string]Entry{a: ent(10, `"e1"`, t0)},
			disk: map[string]LocalFile{a: onDisk(10, t0)}, unchanged: 1},
		{name: "new ETag, same size: download",
			remote: []Object{obj(a, 10, `"e2"`, t1)}, state: map[string]Entry{a: ent(10, `"e1"`, t0)},
			disk: map[string]LocalFile{a: onDisk(10, t0)}, download: []string{a}},
		{name: "new size: download",
			remote: []Object{obj(a, 11, `"e1"`, t0)}, state: map[string]Entry{a: ent(10, `"e1"`, t0)},
			disk: map[string]LocalFile{a: onDisk(10, t0)}, download: []string{a}},
		{name: "no ETag from the server: last-modified decides",
			remote: []Object{obj(a, 10, "", t1)}, state: map[string]Entry{a: ent(10, "", t0)},
			disk: map[string]LocalFile{a: onDisk(10, t0)}, download: []string{a}},
		{name: "no ETag, same last-modified: unchanged",
			remote: []Object{obj(a, 10, "", t0)}, state: map[string]Entry{a: ent(10, "", t0)},
			disk: map[string]LocalFile{a: onDisk(10, t0.Add(300*time.Millisecond))}, unchanged: 1},
		{name: "file removed on disk: download again",
			remote: []Object{obj(a, 10, `"e1"`, t0)}, state: map[string]Entry{a: ent(10, `"e1"`, t0)},
			download: []string{a}},
		{name: "file changed on disk (size): download again",
			remote: []Object{obj(a, 10, `"e1"`, t0)}, state: map[string]Entry{a: ent(10, `"e1"`, t0)},
			disk: map[string]LocalFile{a: onDisk(3, t0)}, download: []string{a}},
		{name: "file changed on disk (time): download again",
			remote: []Object{obj(a, 10, `"e1"`, t0)}, state: map[string]Entry{a: ent(10, `"e1"`, t0)},
			disk: map[string]LocalFile{a: onDisk(10, t1)}, download: []string{a}},
		{name: "object gone: delete the file the engine wrote",
			state: map[string]Entry{a: ent(10, `"e1"`, t0)}, disk: map[string]LocalFile{a: onDisk(10, t0)},
			deleted: []string{a}},
		{name: "folder no longer synced: its files go",
			remote: []Object{obj("models/vae/v", 1, `"e"`, t0)}, state: map[string]Entry{"models/vae/v": ent(1, `"e"`, t0)},
			deleted: []string{"models/vae/v"}},
		{name: "out of scope and folder markers are ignored",
			remote: []Object{obj("models/vae/v", 1, `"e"`, t0), obj("models/loras/", 0, `"d"`, t0), obj("models/loras/x/", 0, `"d"`, t0), obj("input/i", 1, `"e"`, t0)}},
		{name: "a key that climbs out is skipped",
			remote: []Object{obj("models/loras/../../etc/passwd", 1, `"e"`, t0)}, skipReason: "'..'"},
		{name: "an empty segment is skipped",
			remote: []Object{obj("models/loras//x", 1, `"e"`, t0)}, skipReason: "empty"},
		{name: "file and folder of one name: the folder wins",
			remote:   []Object{obj("models/loras/x", 1, `"e"`, t0), obj("models/loras/x/y", 1, `"e"`, t0)},
			download: []string{"models/loras/x/y"}, skipReason: "folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := makePlan(tc.remote, tc.state, sc, func(rel string) LocalFile { return tc.disk[rel] })
			var got []string
			for _, o := range p.Download {
				got = append(got, o.Rel)
			}
			if !reflect.DeepEqual(got, tc.download) {
				t.Errorf("download %v, want %v", got, tc.download)
			}
			if !reflect.DeepEqual(p.Delete, tc.deleted) {
				t.Errorf("delete %v, want %v", p.Delete, tc.deleted)
			}
			if p.Unchanged != tc.unchanged || len(p.Keep) != tc.unchanged {
				t.Errorf("unchanged %d (keep %d), want %d", p.Unchanged, len(p.Keep), tc.unchanged)
			}
			if tc.skipReason == "" && len(p.Skipped) > 0 || tc.skipReason != "" && (len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0].Reason, tc.skipReason)) {
				t.Errorf("skipped %v, want one with %q", p.Skipped, tc.skipReason)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"ok", Options{Bucket: "b", Dir: "/d"}, ""},
		{"no bucket", Options{Dir: "/d"}, "bucket is required"},
		{"bad endpoint", Options{Bucket: "b", Dir: "/d", Endpoint: "s3.local"}, "http://"},
		{"half credentials", Options{Bucket: "b", Dir: "/d", AccessKeyID: "k"}, "both"},
		{"folder climbs", Options{Bucket: "b", Dir: "/d", ModelFolders: []string{".."}}, "letters"},
		{"folder with slash", Options{Bucket: "b", Dir: "/d", ModelFolders: []string{"a/b"}}, "letters"},
		{"folder twice", Options{Bucket: "b", Dir: "/d", ModelFolders: []string{"vae", "vae"}}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.defaults()
			err := tc.o.validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestModelPathsYAML(t *testing.T) {
	got := modelPathsYAML("/workspace/s3", []string{"checkpoints", "loras"})
	want := "# Written by mss-login s3sync; load it with --extra-model-paths-config.\n" +
		"mss_login_s3:\n  base_path: \"/workspace/s3\"\n  checkpoints: \"models/checkpoints\"\n  loras: \"models/loras\"\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestNeedsUpload(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-time.Minute)
	tests := []struct {
		name   string
		local  LocalFile
		remote Object
		want   bool
	}{
		{"new file", LocalFile{Exists: true, Size: 3, ModTime: old}, Object{}, true},
		{"still being written", LocalFile{Exists: true, Size: 3, ModTime: now.Add(-time.Second)}, Object{}, false},
		{"same", LocalFile{Exists: true, Size: 3, ModTime: old}, Object{Rel: "output/a", Size: 3, LastModified: old}, false},
		{"other size", LocalFile{Exists: true, Size: 4, ModTime: old}, Object{Rel: "output/a", Size: 3, LastModified: old}, true},
		{"newer locally", LocalFile{Exists: true, Size: 3, ModTime: old}, Object{Rel: "output/a", Size: 3, LastModified: old.Add(-time.Hour)}, true},
	}
	for _, tc := range tests {
		if got := needsUpload(tc.local, tc.remote, now); got != tc.want {
			t.Errorf("%s: needsUpload = %v, want %v", tc.name, got, tc.want)
		}
	}
}
