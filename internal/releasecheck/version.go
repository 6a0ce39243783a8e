// Package releasecheck tells operators when a newer mss-login release exists. It runs in the
// manager (leader only), reads a release feed now and then, and reports through a Kubernetes
// Event, a Prometheus gauge, one log line per new version and the `update_status` app setting
// that the auth server's admin API returns. It never downloads or runs code.
package releasecheck

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a semantic version. Pre is the pre-release part ("rc.1"), empty for a release.
// Build metadata and `git describe` suffixes are dropped: they do not order versions.
type Version struct {
	Major, Minor, Patch int
	Pre                 string
}

// gitDescribe matches the "-<commits>-g<hash>[-dirty]" that `git describe` appends after a tag,
// so a build made three commits after v0.1.0 compares as v0.1.0, not as a pre-release of it.
var gitDescribe = regexp.MustCompile(`-[0-9]+-g[0-9a-f]{4,40}(-dirty)?$|-dirty$`)

// pep440Pre is a PEP 440 pre-release or dev suffix written without a hyphen: rc1, b2, .dev3.
var pep440Pre = regexp.MustCompile(`^\.?(a|b|c|rc|alpha|beta|pre|preview|dev)\.?[0-9]*$`)

// ParseVersion reads "1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3+build", "1.2" (patch 0), PEP 440's
// "1.2.3rc1" (pre-release "rc1", as the original's tags could be) and a `git describe` output.
func ParseVersion(s string) (Version, error) {
	orig := s
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	s = gitDescribe.ReplaceAllString(s, "")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	core, pre, hasPre := strings.Cut(s, "-")
	// PEP 440 writes the pre-release right after the last number: 1.2.3rc1.
	if !hasPre {
		if i := strings.IndexFunc(core, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i > 0 {
			if !pep440Pre.MatchString(core[i:]) {
				return Version{}, fmt.Errorf("%q is not a version", orig) // e.g. a commit hash "3cd5fb1"
			}
			core, pre, hasPre = strings.TrimSuffix(core[:i], "."), core[i:], true
		}
	}
	parts := strings.Split(core, ".")
	if len(parts) > 3 || core == "" {
		return Version{}, fmt.Errorf("%q is not a version", orig)
	}
	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return Version{}, fmt.Errorf("%q is not a version", orig)
		}
		nums[i] = n
	}
	if hasPre && (pre == "" || strings.Contains(pre, "..") || strings.HasPrefix(pre, ".") || strings.HasSuffix(pre, ".")) {
		return Version{}, fmt.Errorf("%q has an empty pre-release", orig)
	}
	return Version{Major: nums[0], Minor: nums[1], Patch: nums[2], Pre: strings.TrimPrefix(pre, ".")}, nil
}

// String is the canonical form, without "v".
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// IsPre reports whether v is a pre-release.
func (v Version) IsPre() bool { return v.Pre != "" }

// Compare returns -1, 0 or +1 by semantic-version precedence: a pre-release is lower than its
// release; pre-release identifiers compare numerically when both are numbers, numbers sort
// before words, and a longer list wins when one is a prefix of the other.
func (v Version) Compare(w Version) int {
	for _, d := range [3]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		if d != 0 {
			return sign(d)
		}
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := strings.Split(v.Pre, "."), strings.Split(w.Pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareIdent(a[i], b[i]); c != 0 {
			return c
		}
	}
	return sign(len(a) - len(b))
}

func compareIdent(a, b string) int {
	an, aErr := strconv.Atoi(a)
	bn, bErr := strconv.Atoi(b)
	switch {
	case aErr == nil && bErr == nil:
		return sign(an - bn)
	case aErr == nil:
		return -1
	case bErr == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// devVersion is what an unversioned build ("dev", a bare commit hash) compares as: lower than
// every release, and a pre-release, so such a build is told about the newest release there is.
var devVersion = Version{Pre: "dev"}

// CurrentVersion parses the binary's own version; anything unparsable counts as devVersion.
func CurrentVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		return devVersion
	}
	return v
}

// Offered reports whether latest is an update for current: newer, and a pre-release only for
// a binary that is itself a pre-release (a stable install is not pushed to release candidates).
func Offered(current, latest Version) bool {
	return latest.Compare(current) > 0 && (!latest.IsPre() || current.IsPre())
}
