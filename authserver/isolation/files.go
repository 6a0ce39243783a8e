package isolation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
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

// Access is what a GET /view query is to one user.
type Access int

const (
	NotYours Access = iota
	Yours
	// Preview: a temporary preview, the user's when one of their prompts made it (TempFiles).
	Preview
)

// View decides a GET /view query for a user. An output or an input is the user's when it is
// under the user's folder (ComfyUI serves subfolder + the file name's last element; an
// annotation such as "x.png [output]" decides the type, as in ComfyUI). A temporary preview
// has no folder to be under (PreviewImage writes random names to the temp directory): View
// returns Preview and its key, to be looked up among the previews of the user's prompts.
func View(folder string, q url.Values) (Access, string) {
	typ := "output"
	if t := q["type"]; len(t) > 0 {
		typ = t[0]
	}
	name := q.Get("filename")
	for _, a := range []string{"output", "input", "temp"} {
		if strings.HasSuffix(name, "["+a+"]") {
			typ = a
			name = strings.TrimSuffix(strings.TrimSuffix(name, "["+a+"]"), " ")
		}
	}
	sub := q.Get("subfolder")
	if strings.ContainsAny(sub, "\\\x00") {
		return NotYours, ""
	}
	switch typ {
	case "temp":
		return Preview, fileKey(sub, name)
	case "output", "input":
		clean := strings.TrimPrefix(path.Clean("/"+sub), "/")
		if first, _, _ := strings.Cut(clean, "/"); first == folder {
			return Yours, ""
		}
		return NotYours, ""
	}
	return Yours, "" // ComfyUI answers 400 to any other type
}

// fileKey names a file of one of ComfyUI's directories as ComfyUI finds it: the cleaned
// subfolder and the last element of the file name.
func fileKey(subfolder, filename string) string {
	return strings.TrimPrefix(path.Clean("/"+subfolder+"/"+path.Base("/"+filename)), "/")
}

// TempFiles maps every temporary preview named in the outputs of a GET /history answer to the
// prompts that name it: more than one when ComfyUI answered a later prompt's preview node from
// its cache (same inputs), so that prompt shows the same file.
func TempFiles(history []byte) (map[string][]string, error) {
	files := map[string][]string{}
	err := eachMember(history, func(id string, v json.RawMessage) {
		var entry struct {
			Outputs map[string]map[string]json.RawMessage `json:"outputs"`
		}
		if json.Unmarshal(v, &entry) != nil {
			return
		}
		for _, node := range entry.Outputs {
			for _, list := range node {
				var items []struct{ Filename, Subfolder, Type string }
				if json.Unmarshal(list, &items) != nil {
					continue // not a list of files (text, numbers, …)
				}
				for _, it := range items {
					if it.Type == "temp" && it.Filename != "" {
						k := fileKey(it.Subfolder, it.Filename)
						files[k] = append(files[k], id)
					}
				}
			}
		}
	})
	return files, err
}

// ErrUpload: an upload that could read or write outside the user's folder, or that is not
// read alike by Go and by ComfyUI (aiohttp).
var ErrUpload = errors.New("upload refused")

// OwnUpload rewrites a multipart upload (ComfyUI's POST /upload/image and /upload/mask) for a
// user: every "subfolder" under the user's folder (one is added when there is none), file names
// without a path, every mask's "original_ref" under the user's folder. The parts are written
// anew from what Go parsed (names and file names in one canonical form), so ComfyUI reads the
// fields this function decided on. It returns the new body and its Content-Type.
func OwnUpload(body []byte, contentType, folder string) ([]byte, string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, "", fmt.Errorf("%w: not multipart/form-data", ErrUpload)
	}
	rd := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out bytes.Buffer
	wr := multipart.NewWriter(&out)
	sawSubfolder := false
	for {
		part, err := rd.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrUpload, err)
		}
		disp, dp, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || dp["name"] == "" || len(part.Header.Values("Content-Disposition")) != 1 {
			return nil, "", fmt.Errorf("%w: a part without one plain form-data name", ErrUpload)
		}
		for k := range dp {
			if k != "name" && k != "filename" {
				return nil, "", fmt.Errorf("%w: part parameter %q", ErrUpload, k)
			}
		}
		name, filename := dp["name"], dp["filename"]
		value, err := io.ReadAll(part)
		if err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrUpload, err)
		}
		switch name {
		case "subfolder":
			sub, err := ownSubfolder(folder, string(value))
			if err != nil {
				return nil, "", err
			}
			value, sawSubfolder = []byte(sub), true
		case "original_ref":
			var ref struct{ Filename, Subfolder, Type string }
			if json.Unmarshal(value, &ref) != nil {
				return nil, "", fmt.Errorf("%w: original_ref is not a JSON object", ErrUpload)
			}
			if a, _ := View(folder, url.Values{"filename": {ref.Filename}, "subfolder": {ref.Subfolder},
				"type": {cmpOr(ref.Type, "output")}}); a != Yours {
				return nil, "", fmt.Errorf("%w: original_ref names another user's image", ErrUpload)
			}
		}
		h := textproto.MIMEHeader{}
		if _, isFile := dp["filename"]; isFile {
			if filename == "" || strings.ContainsAny(filename, "/\\\x00") || filename == "." || filename == ".." {
				return nil, "", fmt.Errorf("%w: a file name with a path", ErrUpload)
			}
			h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": name, "filename": filename}))
			if ct := part.Header.Get("Content-Type"); ct != "" {
				if _, _, err := mime.ParseMediaType(ct); err == nil {
					h.Set("Content-Type", ct)
				}
			}
		} else {
			h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": name}))
		}
		pw, _ := wr.CreatePart(h)
		_, _ = pw.Write(value)
	}
	if !sawSubfolder {
		pw, _ := wr.CreateFormField("subfolder")
		_, _ = pw.Write([]byte(folder))
	}
	if err := wr.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), wr.FormDataContentType(), nil
}

// ownSubfolder puts an upload's subfolder under the user's folder.
func ownSubfolder(folder, sub string) (string, error) {
	if strings.HasPrefix(sub, "/") || strings.ContainsAny(sub, "\\:\x00") {
		return "", fmt.Errorf("%w: subfolder: a relative path", ErrUpload)
	}
	for _, seg := range strings.Split(sub, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: subfolder: no \"..\"", ErrUpload)
		}
	}
	sub = strings.Trim(sub, "/")
	if sub == "" || sub == folder || strings.HasPrefix(sub, folder+"/") {
		if sub == "" {
			return folder, nil
		}
		return sub, nil
	}
	return folder + "/" + sub, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Options decides the option lists of /object_info for one user. Inputs keeps the input
// directory's files of an input that takes uploads (nil: all); Models tells, for a name that is
// a model ComfyUI lists, whether the user may see it (known false: not a model).
type Options struct {
	Inputs func(name string) bool
	Models func(name string) (known, visible bool)
}

// FilterObjectInfo rewrites the option lists of a GET /object_info (or /object_info/{node})
// answer for one user. The options of an input that takes uploads (its config has an
// "image_upload", "audio_upload", … flag) are the files of ComfyUI's input directory,
// everyone's: only those Inputs keeps stay. An option list that names a model (whatever node
// defines it, custom nodes included) keeps only the models the user may see, and none of the
// names not known as models (a model just added, not yet in the listings the caller read). Nodes
// that change nothing are copied as they are.
func FilterObjectInfo(body []byte, o Options) ([]byte, error) {
	if o.Models != nil {
		o.Models = memo(o.Models)
	}
	return rewriteObject(body, func(_ string, node json.RawMessage) (json.RawMessage, error) {
		if bytes.Contains(node, []byte("upload")) {
			return filterOptions(node, o) // a loader of input files, perhaps: decoded
		}
		if o.Models == nil {
			return node, nil // most nodes, copied without decoding
		}
		// Every list of names that names a model, read from the bytes without decoding.
		return filterStringArrays(node, o.Models), nil
	})
}

func filterOptions(node json.RawMessage, o Options) (json.RawMessage, error) {
	var n map[string]json.RawMessage
	if err := json.Unmarshal(node, &n); err != nil {
		return nil, errShape
	}
	var input map[string]map[string]json.RawMessage // required / optional → name → spec
	if json.Unmarshal(n["input"], &input) != nil {
		return node, nil
	}
	changed := false
	for _, group := range input {
		for name, spec := range group {
			var parts []json.RawMessage
			if json.Unmarshal(spec, &parts) != nil || len(parts) == 0 {
				continue
			}
			var cfg map[string]json.RawMessage
			if len(parts) > 1 {
				_ = json.Unmarshal(parts[1], &cfg)
			}
			var keep func([]string) ([]string, bool)
			switch {
			case takesUploads(cfg) && o.Inputs != nil:
				keep = func(files []string) ([]string, bool) { return keepNames(files, o.Inputs), true }
			case o.Models != nil:
				keep = func(values []string) ([]string, bool) { return keepModels(values, o.Models) }
			default:
				continue
			}
			var values []string
			edited := false
			if json.Unmarshal(parts[0], &values) == nil { // [[values…], {…}]
				if kept, ok := keep(values); ok {
					parts[0], _ = json.Marshal(kept)
					edited = true
				}
			}
			if json.Unmarshal(cfg["options"], &values) == nil { // ["COMBO", {"options": [values…]}]
				if kept, ok := keep(values); ok {
					cfg["options"], _ = json.Marshal(kept)
					parts[1], _ = json.Marshal(cfg)
					edited = true
				}
			}
			if edited {
				group[name], _ = json.Marshal(parts)
				changed = true
			}
		}
	}
	if !changed {
		return node, nil
	}
	n["input"], _ = json.Marshal(input)
	return json.Marshal(n)
}

// keepModels keeps, of a list that names at least one model, the models the user may see;
// ok is false for a list that names none (not a model list: kept as it is).
func keepModels(values []string, models func(string) (bool, bool)) ([]string, bool) {
	out, anyModel := []string{}, false
	for _, v := range values {
		known, visible := models(v)
		anyModel = anyModel || known
		if known && visible {
			out = append(out, v)
		}
	}
	if !anyModel || len(out) == len(values) {
		return nil, false
	}
	return out, true
}

func takesUploads(cfg map[string]json.RawMessage) bool {
	for k, v := range cfg {
		if strings.Contains(k, "upload") && string(v) != "false" && string(v) != "null" {
			return true
		}
	}
	return false
}

func keepNames(files []string, keep func(string) bool) []string {
	out := []string{}
	for _, f := range files {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// InUserFolder reports whether a name from an input listing ("sub/x.png") is under folder.
func InUserFolder(folder string) func(string) bool {
	return func(name string) bool { return strings.HasPrefix(name, folder+"/") }
}
