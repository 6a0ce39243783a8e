package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

func TestFlattenGrants(t *testing.T) {
	got := flattenGrants([]authv1alpha1.ModelGrant{{Folder: "loras", Patterns: []string{"a*", "b"}}, {Folder: "loras", Patterns: []string{"a*"}},
		{Folder: "vae", Patterns: []string{"a*"}}})
	want := []modelgrant.Grant{{Folder: "loras", Pattern: "a*"}, {Folder: "loras", Pattern: "b"}, {Folder: "vae", Pattern: "a*"}}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}

func TestCountGrants(t *testing.T) {
	listed := []store.ListedModel{{Folder: "checkpoints", Name: "sdxl/a.safetensors"}, {Folder: "checkpoints", Name: "sdxl/b.safetensors"},
		{Folder: "text_encoders", Name: "t5.safetensors"}, {Folder: "loras", Name: "sdxl/l.safetensors"}}
	grants := []modelgrant.Grant{{Folder: "checkpoints", Pattern: "sdxl/*"}, {Folder: "clip", Pattern: "t5.safetensors"},
		{Folder: "checkpoints", Pattern: "flux*"}}
	st, cond := countGrants(grants, listed)
	if len(st) != 3 || st[0].Matches != 2 || st[1].Matches != 1 || st[2].Matches != 0 {
		t.Errorf("counts %+v (a grant of clip counts text_encoders, ComfyUI's new name; loras are not checkpoints)", st)
	}
	if cond.Status != metav1.ConditionFalse || cond.Reason != "PatternMatchesNone" || !strings.Contains(cond.Message, "checkpoints/flux*") ||
		strings.Contains(cond.Message, "sdxl") {
		t.Errorf("condition %+v", cond)
	}
	if _, cond := countGrants(grants[:2], listed); cond.Status != metav1.ConditionTrue {
		t.Errorf("every pattern matches: %+v", cond)
	}
	if st, cond := countGrants(grants, nil); st != nil || cond.Status != metav1.ConditionUnknown || cond.Reason != "ListingsUnknown" {
		t.Errorf("nothing recorded yet: %+v %+v", st, cond)
	}
}

// A plaintext Secret password that the login form would refuse is applied, and the status says
// which rule it breaks; a hash is not judged.
func TestPolicyNote(t *testing.T) {
	for v, want := range map[string]string{
		"Good-pass-1!":   "",
		"short1!":        "8 to 4096 characters",
		"nodigits-here!": "needs a digit and a special character",
		"has space 1!":   "no spaces",
	} {
		got := policyNote([]byte(v))
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("policyNote(%q) = %q, want %q", v, got, want)
		}
	}
	hash, _ := password.Hash("short")
	if got := policyNote([]byte(hash + "\n")); got != "" {
		t.Errorf("a hash is judged: %q", got)
	}
}
