package s3sync

import (
	"path"
	"sort"
	"strings"
	"time"
)

// Object is one remote object, keyed by its path relative to the prefix ("models/loras/a.safetensors").
type Object struct {
	Rel          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// Entry is what the state file remembers about a file the engine wrote.
type Entry struct {
	Size         int64     `json:"size"`
	ETag         string    `json:"etag,omitempty"`
	LastModified time.Time `json:"lastModified"`
}

// LocalFile is what is on disk at a path (Exists false when nothing, or not a regular file).
type LocalFile struct {
	Exists  bool
	Size    int64
	ModTime time.Time
}

// Skip is a remote object that will not be written, and why.
type Skip struct {
	Rel, Reason string
}

// Plan is what one sync does.
type Plan struct {
	Download  []Object // sorted by Rel
	Delete    []string // rel paths of files the engine wrote whose objects are gone; sorted
	Keep      map[string]Entry
	Unchanged int
	Skipped   []Skip
}

// scopes are the rel-path prefixes a sync owns: models/<folder>/ for each folder, input/.
func scopes(folders []string, input bool) []string {
	out := make([]string, 0, len(folders)+1)
	for _, f := range folders {
		out = append(out, "models/"+f+"/")
	}
	if input {
		out = append(out, "input/")
	}
	return out
}

func inScopes(rel string, sc []string) bool {
	for _, s := range sc {
		if strings.HasPrefix(rel, s) {
			return true
		}
	}
	return false
}

// checkRel says why an object's rel path cannot become a local file ("" when it can). Keys are
// untrusted input: a key with "..", "." or empty segments must never climb out of the directory.
func checkRel(rel string) string {
	if strings.ContainsRune(rel, 0) {
		return "the key contains a NUL byte"
	}
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case "", ".", "..":
			return "the key has an empty, '.' or '..' path segment"
		}
		if len(seg) > 255 {
			return "a path segment is longer than 255 bytes"
		}
	}
	return ""
}

// unchanged reports whether the file the engine wrote for e still stands for o: same size and
// ETag (or, when the server gives no ETag, the same last-modified time), and the file on disk
// is still the one written (its size and the modification time the engine set).
func unchanged(o Object, e Entry, local LocalFile) bool {
	if o.Size != e.Size {
		return false
	}
	if o.ETag != "" || e.ETag != "" {
		if o.ETag != e.ETag {
			return false
		}
	} else if !sameSecond(o.LastModified, e.LastModified) {
		return false
	}
	return local.Exists && local.Size == e.Size && sameSecond(local.ModTime, e.LastModified)
}

// sameSecond compares at S3's one-second resolution (and most file systems').
func sameSecond(a, b time.Time) bool {
	return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// makePlan decides one sync from the listing, the state file and the disk. Objects outside
// the scopes and directory markers are ignored; the state's files that no listed object in
// scope stands for any more are deleted.
func makePlan(remote []Object, state map[string]Entry, sc []string, stat func(rel string) LocalFile) Plan {
	p := Plan{Keep: map[string]Entry{}}
	wanted := make(map[string]Object, len(remote))
	dirs := map[string]bool{}
	for _, o := range remote {
		if !inScopes(o.Rel, sc) || strings.HasSuffix(o.Rel, "/") {
			continue
		}
		if why := checkRel(o.Rel); why != "" {
			p.Skipped = append(p.Skipped, Skip{o.Rel, why})
			continue
		}
		wanted[o.Rel] = o
		for d := path.Dir(o.Rel); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for rel, o := range wanted {
		if dirs[rel] {
			// "a" and "a/b" cannot both be on disk; the folder wins, as in a file browser.
			p.Skipped = append(p.Skipped, Skip{rel, "another key uses this name as a folder"})
			delete(wanted, rel)
			continue
		}
		if e, ok := state[rel]; ok && unchanged(o, e, stat(rel)) {
			p.Keep[rel] = e
			p.Unchanged++
			continue
		}
		p.Download = append(p.Download, o)
	}
	for rel := range state {
		if _, ok := wanted[rel]; !ok {
			p.Delete = append(p.Delete, rel)
		}
	}
	sort.Slice(p.Download, func(i, j int) bool { return p.Download[i].Rel < p.Download[j].Rel })
	sort.Strings(p.Delete)
	sort.Slice(p.Skipped, func(i, j int) bool { return p.Skipped[i].Rel < p.Skipped[j].Rel })
	return p
}
