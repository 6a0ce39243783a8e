package modeldl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// The sources, as the original's model-download API names them.
const (
	HuggingFace = "huggingface"
	CivitAI     = "civitai"
)

// Bases are the sources' addresses (tests point them at loopback).
type Bases struct {
	HuggingFace string // https://huggingface.co
	CivitAI     string // https://civitai.com
}

// DefaultBases are the public services.
var DefaultBases = Bases{HuggingFace: "https://huggingface.co", CivitAI: "https://civitai.com"}

// Request names a file at a source: Hugging Face's repo, revision and file, or CivitAI's model
// and/or version id.
type Request struct {
	Source    string `json:"source"`
	Repo      string `json:"repo_id,omitempty"`
	Revision  string `json:"revision,omitempty"`
	File      string `json:"filename,omitempty"`
	ModelID   int64  `json:"model_id,omitempty"`
	VersionID int64  `json:"model_version_id,omitempty"`
}

var (
	hfRepo = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,95}/[A-Za-z0-9][-A-Za-z0-9_.]{0,95}$`)
	hfRev  = regexp.MustCompile(`^[-A-Za-z0-9_.]{1,100}$`)
)

// Validate checks a request before anything is asked of a source; errors name the field.
func (r *Request) Validate() error {
	switch r.Source {
	case HuggingFace:
		if !hfRepo.MatchString(r.Repo) || strings.Contains(r.Repo, "..") {
			return errors.New(`repo_id: want "owner/name"`)
		}
		if r.Revision == "" {
			r.Revision = "main"
		}
		if !hfRev.MatchString(r.Revision) || strings.Contains(r.Revision, "..") {
			return errors.New("revision: a branch, tag or commit")
		}
		clean := path.Clean("/" + r.File)[1:]
		if r.File == "" || clean != r.File || strings.HasPrefix(r.File, ".") {
			return errors.New("filename: a path inside the repository")
		}
		return CheckName(path.Base(r.File))
	case CivitAI:
		if r.ModelID <= 0 && r.VersionID <= 0 {
			return errors.New("model_id or model_version_id: one is needed")
		}
		return nil
	}
	return fmt.Errorf("source: %q is not one of %s, %s", r.Source, HuggingFace, CivitAI)
}

// Resolved is a request made concrete: what to fetch and under which name to store it.
type Resolved struct {
	Source
	Name string // the file name to store
}

// Resolve asks the source for the file's address, size and sha256 (Hugging Face's LFS oid,
// CivitAI's published SHA256). apiKey (may be "") goes in the Authorization header only.
func Resolve(ctx context.Context, client *http.Client, bases Bases, r Request, apiKey string) (Resolved, error) {
	if err := r.Validate(); err != nil {
		return Resolved{}, err
	}
	hdr := http.Header{}
	if apiKey != "" {
		hdr.Set("Authorization", "Bearer "+apiKey)
	}
	if r.Source == HuggingFace {
		return resolveHF(ctx, client, strings.TrimRight(bases.HuggingFace, "/"), r, hdr)
	}
	return resolveCivitAI(ctx, client, strings.TrimRight(bases.CivitAI, "/"), r, hdr)
}

func resolveHF(ctx context.Context, client *http.Client, base string, r Request, hdr http.Header) (Resolved, error) {
	dir := path.Dir(r.File)
	treeURL := base + "/api/models/" + r.Repo + "/tree/" + url.PathEscape(r.Revision)
	if dir != "." {
		treeURL += "/" + escapePath(dir)
	}
	var entries []struct {
		Type string `json:"type"`
		Path string `json:"path"`
		Size int64  `json:"size"`
		LFS  *struct {
			OID  string `json:"oid"`
			Size int64  `json:"size"`
		} `json:"lfs"`
	}
	if err := getJSON(ctx, client, treeURL, hdr, &entries); err != nil {
		return Resolved{}, fmt.Errorf("hugging face %s@%s: %w", r.Repo, r.Revision, err)
	}
	for _, e := range entries {
		if e.Type != "file" || e.Path != r.File {
			continue
		}
		src := Source{URL: base + "/" + r.Repo + "/resolve/" + url.PathEscape(r.Revision) + "/" + escapePath(r.File), Header: hdr, Size: e.Size}
		if e.LFS != nil { // a file kept in LFS: its oid is the sha256 of its content
			src.SHA256, src.Size = e.LFS.OID, e.LFS.Size
		}
		return Resolved{Source: src, Name: path.Base(r.File)}, nil
	}
	return Resolved{}, fmt.Errorf("hugging face %s@%s has no file %s", r.Repo, r.Revision, r.File)
}

func resolveCivitAI(ctx context.Context, client *http.Client, base string, r Request, hdr http.Header) (Resolved, error) {
	type file struct {
		Name        string  `json:"name"`
		SizeKB      float64 `json:"sizeKB"`
		Primary     bool    `json:"primary"`
		DownloadURL string  `json:"downloadUrl"`
		Hashes      struct {
			SHA256 string `json:"SHA256"`
		} `json:"hashes"`
	}
	type version struct {
		ID    int64  `json:"id"`
		Files []file `json:"files"`
	}
	var v version
	if r.VersionID > 0 {
		if err := getJSON(ctx, client, base+"/api/v1/model-versions/"+strconv.FormatInt(r.VersionID, 10), hdr, &v); err != nil {
			return Resolved{}, fmt.Errorf("civitai version %d: %w", r.VersionID, err)
		}
	} else {
		var m struct {
			ModelVersions []version `json:"modelVersions"`
		}
		if err := getJSON(ctx, client, base+"/api/v1/models/"+strconv.FormatInt(r.ModelID, 10), hdr, &m); err != nil {
			return Resolved{}, fmt.Errorf("civitai model %d: %w", r.ModelID, err)
		}
		if len(m.ModelVersions) == 0 {
			return Resolved{}, fmt.Errorf("civitai model %d has no versions", r.ModelID)
		}
		v = m.ModelVersions[0] // the newest
	}
	var pick *file
	for i := range v.Files {
		if f := &v.Files[i]; pick == nil || f.Primary {
			pick = f
		}
	}
	if pick == nil || pick.DownloadURL == "" {
		return Resolved{}, fmt.Errorf("civitai version %d has no file to download", v.ID)
	}
	u, err := url.Parse(pick.DownloadURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return Resolved{}, fmt.Errorf("civitai version %d: not a download address", v.ID)
	}
	if err := CheckName(pick.Name); err != nil {
		return Resolved{}, fmt.Errorf("civitai version %d: %w", v.ID, err)
	}
	return Resolved{Source: Source{URL: pick.DownloadURL, Header: hdr, Size: int64(pick.SizeKB * 1024), SHA256: strings.ToLower(pick.Hashes.SHA256)},
		Name: pick.Name}, nil
}

// getJSON reads a JSON answer of at most 4 MiB.
func getJSON(ctx context.Context, client *http.Client, u string, hdr http.Header, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return stripURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Code: resp.StatusCode}
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
