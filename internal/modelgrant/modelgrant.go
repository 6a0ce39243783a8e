// Package modelgrant decides which ComfyUI models a user may see and use: grants of a model
// folder and a pattern over the path inside it, from the user's role, the user's own resource
// and the admin API. Pure functions; the auth server and the operator share them.
package modelgrant

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Folders are the model folders a grant may name: ComfyUI's own (folder_paths, v0.8) and the
// ones widespread custom nodes add. A folder outside the list cannot be granted, and its models
// are not restricted.
var Folders = []string{
	"audio_encoders", "checkpoints", "classifiers", "clip", "clip_vision", "configs", "controlnet",
	"diffusers", "diffusion_models", "embeddings", "gligen", "hypernetworks", "latent_upscale_models",
	"loras", "model_patches", "photomaker", "style_models", "text_encoders", "unet", "upscale_models",
	"vae", "vae_approx",
	// custom nodes
	"facerestore_models", "insightface", "instantid", "ipadapter", "sams", "ultralytics",
}

// legacy are ComfyUI's old folder names, listed under their new ones (folder_paths.map_legacy).
var legacy = map[string]string{"clip": "text_encoders", "unet": "diffusion_models"}

// Canonical is the folder ComfyUI lists folder's models under.
func Canonical(folder string) string {
	if f, ok := legacy[folder]; ok {
		return f
	}
	return folder
}

// KnownFolder reports whether folder is one of Folders.
func KnownFolder(folder string) bool { return slices.Contains(Folders, folder) }

// Grant lets its holder see and use the models of Folder whose path matches Pattern: an exact
// name ("flux1-dev.safetensors"), or a glob over the path's segments ("sdxl/*": the files
// directly in sdxl; "sdxl/**": any depth; "*", "?", "[a-z]" within a segment, as path.Match).
type Grant struct {
	Folder  string `json:"folder"`
	Pattern string `json:"pattern"`
}

func (g Grant) String() string { return g.Folder + "/" + g.Pattern }

// ErrPattern wraps every reason a grant is refused.
var ErrPattern = errors.New("bad model grant")

// Validate names what is wrong with a grant, if anything.
func (g Grant) Validate() error {
	if !KnownFolder(g.Folder) {
		return fmt.Errorf("%w: folder %q is not a model folder (one of %s)", ErrPattern, g.Folder, strings.Join(Folders, ", "))
	}
	p := g.Pattern
	switch {
	case p == "":
		return fmt.Errorf("%w: pattern is empty", ErrPattern)
	case len(p) > 191:
		return fmt.Errorf("%w: pattern is longer than 191 characters", ErrPattern)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: pattern %q starts with /: it is a path inside the folder", ErrPattern, p)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("%w: pattern %q holds a backslash or NUL", ErrPattern, p)
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return fmt.Errorf("%w: pattern %q has an empty, \".\" or \"..\" segment", ErrPattern, p)
		case seg != "**" && strings.Contains(seg, "**"):
			return fmt.Errorf("%w: pattern %q: ** must be a whole segment", ErrPattern, p)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("%w: pattern %q: bad glob syntax in %q", ErrPattern, p, seg)
		}
	}
	return nil
}

// Matches reports whether name (a path inside the folder, as ComfyUI lists it) matches the
// grant's pattern.
func (g Grant) Matches(name string) bool {
	return matchSegs(strings.Split(g.Pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// Set is one user's grants, compiled for lookups.
type Set struct {
	exact map[string]map[string]bool // folder → exact names
	globs map[string][][]string      // folder → patterns, split into segments
	key   string
}

// NewSet compiles grants (invalid ones are skipped: they were refused when made).
func NewSet(grants []Grant) *Set {
	s := &Set{exact: map[string]map[string]bool{}, globs: map[string][][]string{}}
	keys := make([]string, 0, len(grants))
	for _, g := range grants {
		if g.Validate() != nil {
			continue
		}
		g.Folder = Canonical(g.Folder)
		keys = append(keys, g.String())
		if strings.ContainsAny(g.Pattern, "*?[") {
			s.globs[g.Folder] = append(s.globs[g.Folder], strings.Split(g.Pattern, "/"))
			continue
		}
		if s.exact[g.Folder] == nil {
			s.exact[g.Folder] = map[string]bool{}
		}
		s.exact[g.Folder][g.Pattern] = true
	}
	slices.Sort(keys)
	s.key = strings.Join(slices.Compact(keys), "\n")
	return s
}

// Key is the same for two sets of the same grants, whatever their order: filtered answers are
// cached by it.
func (s *Set) Key() string { return s.key }

// Allows reports whether the set grants the model name of folder.
func (s *Set) Allows(folder, name string) bool {
	folder = Canonical(folder)
	if s.exact[folder][name] {
		return true
	}
	globs := s.globs[folder]
	if len(globs) == 0 {
		return false
	}
	segs := strings.Split(name, "/")
	for _, p := range globs {
		if matchSegs(p, segs) {
			return true
		}
	}
	return false
}
