package s3sync

import (
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The workflow sync's rule, without I/O: decideWorkflow for one file, planWorkflows for one
// user's folder (docs/s3.md, "Workflow sync", says why the rule is as it is). The engine
// gathers both sides and the baseline, plans, and applies the plan (workflows.go).

// Conflict strategies.
const (
	NewerWins = "newer_wins"
	LocalWins = "local_wins"
	S3Wins    = "s3_wins"
)

// mtimeSlack is how far apart two mtimes may be and still count as equal (the original's 2 s).
const mtimeSlack = 2 * time.Second

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

// inStep: both sides hold the same content, or both are untouched since they were in step (a
// multipart ETag never equals an MD5). base may be nil.
func inStep(local, remote WFSide, base *wfBase) bool {
	return sameContent(local, remote) || (base != nil && base.localSame(local) && base.remoteSame(remote))
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
	case inStep(local, remote, base):
		return WFNone
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

// isWorkflowName: a name synced as a workflow, on either side (top level only, *.json, no
// dot file).
func isWorkflowName(n string) bool {
	return strings.HasSuffix(strings.ToLower(n), ".json") && !strings.ContainsAny(n, `/\`) &&
		!strings.HasPrefix(n, ".") && n == filepath.Base(n)
}

// needSum: the local file's MD5 is wanted to decide, because its size equals the object's or
// the baseline's (files of another size differ anyway, and files over the limit are ignored).
func needSum(local, remote WFSide, base *wfBase, maxBytes int64) bool {
	return local.Exists && local.Size <= maxBytes &&
		((remote.Exists && remote.Size == local.Size) || (base != nil && base.LocalSize == local.Size))
}

// baseOf is name's entry in a user's baseline, nil when it has none.
func baseOf(base map[string]wfBase, name string) *wfBase {
	if e, ok := base[name]; ok {
		return &e
	}
	return nil
}

// wfLocal is one user's local workflows folder as listed.
type wfLocal struct {
	// Dir: the folder exists (it may be empty).
	Dir bool
	// Files are its regular workflow files; Sum is set where needSum said so ("" when it
	// could not be read: counts as changed, never deleted).
	Files map[string]WFSide
	// Skip holds workflow names that are something else (a symbolic link, a folder): neither
	// synced nor taken as deleted.
	Skip map[string]bool
}

// wfStep is one file's action that needs I/O, with both sides as listed (the writes check
// them again) and the file's previous baseline entry (nil: none), which is kept when the step
// fails or is deferred.
type wfStep struct {
	Name          string
	Action        WFAction // WFUpload, WFDownload, WFDeleteLocal or WFDeleteRemote
	Local, Remote WFSide
	Base          *wfBase
}

// wfPlan is what one user's sync does.
type wfPlan struct {
	Steps []wfStep // sorted by Name
	// Keep is the new baseline of the files that need no step: in step on both sides now, or
	// skipped locally (their previous entry, if any). With Forget none of it is recorded (and
	// from what gather lists it is empty then).
	Keep               map[string]wfBase
	Unchanged, Ignored int
	// Forget: a whole folder is missing on one side (the local folder, or every workflow object
	// in the bucket), so no baseline is recorded this round: it starts over once both sides
	// exist, and a folder that comes back with other contents is merged, not mirrored.
	Forget bool
}

// planWorkflows decides one user's sync from the local folder, the user's workflow objects in
// the bucket (remote: workflow names only, so a folder marker does not count as content) and
// the user's baseline (nil: none). Every name on either side is decided by decideWorkflow.
func planWorkflows(local wfLocal, remote map[string]WFSide, base map[string]wfBase, strategy string, maxBytes int64) wfPlan {
	r := wfRound{Strategy: strategy, MaxBytes: maxBytes, LocalDir: local.Dir, RemoteAny: len(remote) > 0}
	p := wfPlan{Keep: map[string]wfBase{}, Forget: !r.LocalDir || !r.RemoteAny}
	names := make([]string, 0, len(local.Files)+len(remote))
	for n := range local.Files {
		names = append(names, n)
	}
	for n := range remote {
		if !local.Files[n].Exists {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b := baseOf(base, n)
		if local.Skip[n] {
			// Something else than a regular file by that name: not ours, and not a deletion.
			if b != nil {
				p.Keep[n] = *b
			}
			continue
		}
		l, rm := local.Files[n], remote[n]
		switch a := decideWorkflow(l, rm, b, r); a {
		case WFNone:
			p.Unchanged++
			if inStep(l, rm, b) { // else equal mtimes in a conflict under newer_wins: no entry
				p.Keep[n] = wfBase{LocalSize: l.Size, LocalMD5: l.Sum, ETag: rm.Sum, RemoteSize: rm.Size}
			}
		case WFIgnore:
			p.Ignored++
		default:
			p.Steps = append(p.Steps, wfStep{Name: n, Action: a, Local: l, Remote: rm, Base: b})
		}
	}
	return p
}
