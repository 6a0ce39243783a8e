package s3sync

import (
	"reflect"
	"testing"
	"time"
)

// TestPlanWorkflows covers one user's plan: which files get a step, which baseline entries are
// carried without one, what is counted, and when the baseline starts over.
func TestPlanWorkflows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const max = 100
	loc := func(size int64, sum string) WFSide { return WFSide{Exists: true, Size: size, ModTime: t0, Sum: sum} }
	rem := func(size int64, etag string) WFSide {
		return WFSide{Exists: true, Size: size, ModTime: t0.Add(time.Hour), Sum: etag}
	}
	files := func(kv ...any) map[string]WFSide {
		m := map[string]WFSide{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(WFSide)
		}
		return m
	}
	dir := func(fs map[string]WFSide, skip ...string) wfLocal {
		l := wfLocal{Dir: true, Files: fs, Skip: map[string]bool{}}
		for _, n := range skip {
			l.Skip[n] = true
		}
		return l
	}
	// In step at the last sync: 10 bytes, MD5 "m1" locally, ETag "e1" in the bucket.
	b1 := wfBase{LocalSize: 10, LocalMD5: "m1", ETag: "e1", RemoteSize: 10}
	base := func(names ...string) map[string]wfBase {
		m := map[string]wfBase{}
		for _, n := range names {
			m[n] = b1
		}
		return m
	}
	cases := []struct {
		name     string
		strategy string
		local    wfLocal
		remote   map[string]WFSide
		base     map[string]wfBase
		want     wfPlan
	}{
		{"nothing anywhere", NewerWins, dir(files()), files(), nil,
			wfPlan{Keep: map[string]wfBase{}, Forget: true}},
		{"same content: recorded as in step, no step", NewerWins,
			dir(files("a.json", loc(10, "m2"))), files("a.json", rem(10, "m2")), nil,
			wfPlan{Keep: map[string]wfBase{"a.json": {LocalSize: 10, LocalMD5: "m2", ETag: "m2", RemoteSize: 10}}, Unchanged: 1}},
		{"both untouched since the baseline (multipart ETag): kept", S3Wins,
			dir(files("a.json", loc(10, "m1"))), files("a.json", rem(10, "e1")), base("a.json"),
			wfPlan{Keep: base("a.json"), Unchanged: 1}},
		{"equal mtimes in a conflict under newer_wins: counted, not recorded", NewerWins,
			dir(files("a.json", WFSide{Exists: true, Size: 10, ModTime: t0, Sum: "m2"})),
			files("a.json", WFSide{Exists: true, Size: 11, ModTime: t0.Add(time.Second), Sum: "e2"}), nil,
			wfPlan{Keep: map[string]wfBase{}, Unchanged: 1}},
		{"over the limit: counted, its entry dropped", NewerWins,
			dir(files("a.json", loc(max+1, ""), "b.json", loc(10, "m1"))), files("b.json", rem(10, "e1")), base("a.json", "b.json"),
			wfPlan{Keep: base("b.json"), Unchanged: 1, Ignored: 1}},
		{"one-sided files and deletions, sorted, each with its old entry", NewerWins,
			dir(files("b.json", loc(10, "m1"), "d.json", loc(5, ""), "k.json", loc(10, "m1"))),
			files("a.json", rem(10, "e1"), "c.json", rem(7, "e7"), "k.json", rem(10, "e1")),
			base("a.json", "b.json", "k.json"),
			wfPlan{Steps: []wfStep{
				{Name: "a.json", Action: WFDeleteRemote, Remote: rem(10, "e1"), Base: &b1},
				{Name: "b.json", Action: WFDeleteLocal, Local: loc(10, "m1"), Base: &b1},
				{Name: "c.json", Action: WFDownload, Remote: rem(7, "e7")},
				{Name: "d.json", Action: WFUpload, Local: loc(5, "")},
			}, Keep: base("k.json"), Unchanged: 1}},
		{"changed on one side only: copied, whatever the strategy", LocalWins,
			dir(files("a.json", loc(10, "m1"), "b.json", loc(10, "m2"))),
			files("a.json", rem(10, "e2"), "b.json", rem(10, "e1")), base("a.json", "b.json"),
			wfPlan{Steps: []wfStep{
				{Name: "a.json", Action: WFDownload, Local: loc(10, "m1"), Remote: rem(10, "e2"), Base: &b1},
				{Name: "b.json", Action: WFUpload, Local: loc(10, "m2"), Remote: rem(10, "e1"), Base: &b1},
			}, Keep: map[string]wfBase{}}},
		{"skipped locally with an object: no step, its entry kept", S3Wins,
			dir(files("b.json", loc(10, "m1")), "a.json"), files("a.json", rem(10, "e2"), "b.json", rem(10, "e1")), base("a.json", "b.json"),
			wfPlan{Keep: base("a.json", "b.json"), Unchanged: 1}},
		{"skipped locally without an object: not a name of this sync, its entry goes", NewerWins,
			dir(files("b.json", loc(10, "m1")), "a.json"), files("b.json", rem(10, "e1")), base("a.json", "b.json"),
			wfPlan{Keep: base("b.json"), Unchanged: 1}},
		{"local folder missing: refilled, nothing deleted, baseline forgotten", NewerWins,
			wfLocal{}, files("a.json", rem(10, "e1")), base("a.json"),
			wfPlan{Steps: []wfStep{{Name: "a.json", Action: WFDownload, Remote: rem(10, "e1"), Base: &b1}},
				Keep: map[string]wfBase{}, Forget: true}},
		{"no workflow in the bucket: uploaded, nothing deleted, baseline forgotten", NewerWins,
			dir(files("a.json", loc(10, "m1"), "b.json", loc(10, "m1")), "c.json"), files(), base("a.json", "c.json"),
			wfPlan{Steps: []wfStep{
				{Name: "a.json", Action: WFUpload, Local: loc(10, "m1"), Base: &b1},
				{Name: "b.json", Action: WFUpload, Local: loc(10, "m1")},
			}, Keep: map[string]wfBase{}, Forget: true}},
	}
	for _, c := range cases {
		got := planWorkflows(c.local, c.remote, c.base, c.strategy, max)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\nplanWorkflows = %+v\nwant            %+v", c.name, got, c.want)
		}
	}
}

// TestNeedSum: the local MD5 is read only where a size matches (the object's or the
// baseline's) and the file is within the limit.
func TestNeedSum(t *testing.T) {
	b := &wfBase{LocalSize: 10, ETag: "e1", RemoteSize: 12}
	side := func(size int64) WFSide { return WFSide{Exists: true, Size: size} }
	cases := []struct {
		name          string
		local, remote WFSide
		base          *wfBase
		want          bool
	}{
		{"no local file", WFSide{}, side(10), b, false},
		{"size of the object", side(12), side(12), nil, true},
		{"size of the baseline", side(10), WFSide{}, b, true},
		{"no size matches", side(11), side(12), b, false},
		{"local only, no baseline", side(10), WFSide{}, nil, false},
		{"over the limit", side(101), side(101), nil, false},
		{"exactly the limit", side(100), side(100), nil, true},
	}
	for _, c := range cases {
		if got := needSum(c.local, c.remote, c.base, 100); got != c.want {
			t.Errorf("%s: needSum = %v, want %v", c.name, got, c.want)
		}
	}
}
