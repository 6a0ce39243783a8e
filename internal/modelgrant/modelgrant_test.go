package modelgrant

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, g := range []Grant{{"checkpoints", "flux1-dev.safetensors"}, {"loras", "sdxl/*"}, {"loras", "sdxl/**"},
		{"vae", "**"}, {"embeddings", "neg-[a-c]?.pt"}, {"ipadapter", "a b.bin"}} {
		if err := g.Validate(); err != nil {
			t.Errorf("%v refused: %v", g, err)
		}
	}
	for _, g := range []Grant{{"nope", "x"}, {"", "x"}, {"loras", ""}, {"loras", "/abs"}, {"loras", "../x"}, {"loras", "a/../b"},
		{"loras", "a//b"}, {"loras", "./a"}, {"loras", `a\b`}, {"loras", "a**"}, {"loras", "[a"}, {"loras", "a\x00"},
		{"loras", string(make([]byte, 192))}} {
		if err := g.Validate(); !errors.Is(err, ErrPattern) {
			t.Errorf("%q accepted (%v)", g, err)
		}
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"flux1-dev.safetensors", "flux1-dev.safetensors", true},
		{"flux1-dev.safetensors", "sub/flux1-dev.safetensors", false},
		{"flux1-dev.safetensors", "Flux1-dev.safetensors", false}, // names are case-sensitive, as on Linux
		{"sdxl/*", "sdxl/a.safetensors", true},
		{"sdxl/*", "sdxl/deep/a.safetensors", false},
		{"sdxl/*", "sdxl", false},
		{"sdxl/**", "sdxl/deep/er/a.safetensors", true},
		{"sdxl/**", "sdxl2/a.safetensors", false},
		{"**/*.pt", "a.pt", true},
		{"**/*.pt", "x/y/a.pt", true},
		{"**/*.pt", "x/y/a.ckpt", false},
		{"*", "a.safetensors", true},
		{"*", "sdxl/a.safetensors", false},
		{"neg-[a-c]?.pt", "neg-b1.pt", true},
		{"neg-[a-c]?.pt", "neg-d1.pt", false},
	} {
		if got := (Grant{"loras", c.pattern}).Matches(c.name); got != c.want {
			t.Errorf("%q matches %q: %t, want %t", c.pattern, c.name, got, c.want)
		}
	}
}

func TestSet(t *testing.T) {
	s := NewSet([]Grant{{"loras", "sdxl/*"}, {"checkpoints", "a.safetensors"}, {"loras", "../bad"}, {"clip", "t5.safetensors"}})
	for _, c := range []struct {
		folder, name string
		want         bool
	}{
		{"loras", "sdxl/x.safetensors", true},
		{"checkpoints", "a.safetensors", true},
		{"checkpoints", "sdxl/x.safetensors", false}, // a grant is of its folder only
		{"loras", "a.safetensors", false},
		{"loras", "../bad", false},
		{"text_encoders", "t5.safetensors", true}, // granted as "clip", ComfyUI's old name
		{"clip", "t5.safetensors", true},
	} {
		if got := s.Allows(c.folder, c.name); got != c.want {
			t.Errorf("Allows(%s, %s) = %t, want %t", c.folder, c.name, got, c.want)
		}
	}
	if NewSet([]Grant{{"vae", "b"}, {"vae", "a"}, {"vae", "a"}}).Key() != NewSet([]Grant{{"vae", "a"}, {"vae", "b"}}).Key() {
		t.Error("the same grants in another order have another key")
	}
}

func FuzzMatches(f *testing.F) {
	for _, s := range [][2]string{{"sdxl/**", "sdxl/a/b"}, {"*", "a"}, {"[a-", "x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g := Grant{"loras", pattern}
		if g.Validate() != nil {
			return
		}
		m := g.Matches(name) // never panics
		if pattern == name && !strings.ContainsAny(pattern, "*?[") && !m {
			t.Errorf("a valid exact name %q does not match itself", pattern)
		}
		if NewSet([]Grant{g}).Allows("loras", name) != m {
			t.Errorf("Set and Grant disagree on %q, %q", pattern, name)
		}
	})
}
