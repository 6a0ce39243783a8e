package password

import (
	"regexp"
	"strings"

	"golang.org/x/text/unicode/norm"
)

var (
	// pyEscape is Python's html.escape(s, quote=True), whose entities differ from Go's.
	pyEscape     = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;")
	dropCRLF     = strings.NewReplacer("\r", "", "\n", "")
	legacyEscape = regexp.MustCompile("([;'\\-()<>`=])")
	legacyDelete = regexp.MustCompile("[;&|`]")
	legacyXSS    = []*regexp.Regexp{
		regexp.MustCompile(`(?is)<script.*?>.*?</script>`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`(?i)vbscript:`),
		regexp.MustCompile(`(?i)data:text/html`),
		regexp.MustCompile(`(?i)data:image`),
	}
)

// LegacySanitize reproduces the input sanitizer that older versions of the original applied to
// every form field — the password included — before hashing it (utils/sanitizer.py): strip,
// NFC, HTML-escape, drop CR/LF, backslash-escape ;'-()<>`=, delete ;&|`, bleach-clean, remove
// script patterns. After the delete step no '<', '>' or '&' is left, so bleach's clean changes
// nothing but a NUL, which html5lib turns into U+FFFD.
func LegacySanitize(pw string) string {
	v := strings.TrimSpace(pw)
	v = norm.NFC.String(v)
	v = pyEscape.Replace(v)
	v = dropCRLF.Replace(v)
	v = legacyEscape.ReplaceAllString(v, `\$1`)
	v = legacyDelete.ReplaceAllString(v, "")
	v = strings.ReplaceAll(v, "\x00", "\uFFFD")
	for _, re := range legacyXSS {
		v = re.ReplaceAllString(v, "")
	}
	return v
}
