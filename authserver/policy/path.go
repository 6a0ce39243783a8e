// Package policy decides, for every request, what it needs: nothing (public), a logged-in user,
// a permission flag of the user's role, or an admin. It is the single table of ComfyUI and
// mss-login routes; the decision is a pure function of the method and the normalised path.
package policy

import (
	"errors"
	"net/url"
	"strings"
)

// Path is a request path after normalisation. Forward is what goes upstream; Match is what the
// policy decides on. They describe the same resource: Match is Forward decoded and lower-cased.
type Path struct {
	Forward string // canonical, percent-encoded path (an encoded "/" inside a segment stays %2F)
	Match   string // decoded, lower-cased, "/"-joined; never has "//", ".", ".." or a trailing "/"
}

// ErrBadPath is returned for paths that could mean different things to different parsers
// (the source of most proxy authorization bypasses); they are refused with 400.
var ErrBadPath = errors.New("malformed request path")

// Normalize turns a raw request path (as sent, still percent-encoded) into a Path:
//   - each segment is percent-decoded exactly once; invalid escapes, NUL/control characters,
//     backslashes, ';' and double-encoded '.', '/', '\' or '%' are refused;
//   - empty segments ("//") and "." are dropped, ".." removes the previous segment;
//   - a trailing "/" is dropped (except for "/" itself);
//   - an encoded "/" inside a segment (ComfyUI's /userdata/workflows%2Fa.json) is kept encoded
//     for the upstream, and may only separate ordinary names (no "", ".", "..").
func Normalize(raw string) (Path, error) {
	if raw == "" || raw[0] != '/' {
		return Path{}, ErrBadPath
	}
	if canonical(raw) {
		// Most requests: nothing to decode or resolve.
		return Path{Forward: raw, Match: strings.ToLower(raw)}, nil
	}
	return normalizeSegments(raw)
}

// normalizeSegments is the general path of Normalize.
func normalizeSegments(raw string) (Path, error) {
	var segs []string
	for _, s := range strings.Split(raw[1:], "/") {
		dec, err := url.PathUnescape(s)
		if err != nil || !cleanSegment(dec) {
			return Path{}, ErrBadPath
		}
		switch dec {
		case "", ".":
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			continue
		}
		segs = append(segs, dec)
	}
	var fwd, match strings.Builder
	for _, s := range segs {
		fwd.WriteByte('/')
		fwd.WriteString(url.PathEscape(s))
		match.WriteByte('/')
		match.WriteString(strings.ToLower(s))
	}
	if len(segs) == 0 {
		return Path{Forward: "/", Match: "/"}, nil
	}
	return Path{Forward: fwd.String(), Match: match.String()}, nil
}

// cleanSegment reports whether a decoded segment means one thing to every parser.
func cleanSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c == ';' {
			return false
		}
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			return false // double encoding: a second decoder would see something else
		}
	}
	if strings.Contains(s, "/") {
		for _, part := range strings.Split(s, "/") {
			if part == "" || part == "." || part == ".." {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// canonical reports whether raw is already in normal form: only unreserved characters, no
// empty, "." or ".." segment and no trailing "/".
func canonical(raw string) bool {
	if raw == "/" {
		return true
	}
	if raw[len(raw)-1] == '/' {
		return false
	}
	segStart := 0
	for i := 0; i <= len(raw); i++ {
		if i == len(raw) || raw[i] == '/' {
			seg := raw[segStart:i]
			if i > 0 && (seg == "" || seg == "." || seg == "..") {
				return false
			}
			segStart = i + 1
			continue
		}
		c := raw[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}
