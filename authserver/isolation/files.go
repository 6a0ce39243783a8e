package isolation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"path"
	"regexp"
	"strings"
)

var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// UserFolder is the folder of ComfyUI's output directory that a user's outputs are written to:
// the username, or (a name that is not a plain one) a name derived from the user id.
func UserFolder(username, userID string) string {
	if plainName.MatchString(username) {
		return username
	}
	h := sha256.Sum256([]byte(userID))
	return "user-" + hex.EncodeToString(h[:6])
}

// ErrPrefix: a filename_prefix that could write outside the user's folder.
var ErrPrefix = errors.New("filename_prefix: a relative path without \"..\", \":\" or backslashes")

// OwnPrefix puts a saving node's filename_prefix under the user's folder (kept when it is
// already there, as when a prompt is queued again from the history).
func OwnPrefix(folder, prefix string) (string, error) {
	if strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "\\:\x00") {
		return "", ErrPrefix
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == ".." {
			return "", ErrPrefix
		}
	}
	if prefix == "" {
		prefix = "ComfyUI"
	}
	if prefix == folder || strings.HasPrefix(prefix, folder+"/") {
		return prefix, nil
	}
	return folder + "/" + prefix, nil
}

// ViewAllowed reports whether a GET /view query names a file the user may see. An output is
// the user's when it is under the user's folder (ComfyUI serves subfolder + the file name's
// last element). Inputs and temporary previews are not yet kept apart (docs/authserver.md).
func ViewAllowed(folder string, q url.Values) bool {
	typ := "output"
	if t := q["type"]; len(t) > 0 {
		typ = t[0]
	}
	name := q.Get("filename")
	for _, a := range []string{"output", "input", "temp"} {
		if strings.HasSuffix(name, "["+a+"]") {
			typ = a
		}
	}
	if typ != "output" {
		return true
	}
	sub := q.Get("subfolder")
	if strings.ContainsAny(sub, "\\\x00") {
		return false
	}
	clean := strings.TrimPrefix(path.Clean("/"+sub), "/")
	first, _, _ := strings.Cut(clean, "/")
	return first == folder
}
