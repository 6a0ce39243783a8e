package v1alpha1_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/testenv"
)

// Through the real kube-apiserver: bad manifests are rejected with a message naming the field,
// and the samples apply cleanly.
func TestAPIServer(t *testing.T) {
	_, cfg := testenv.ControlPlane(t, filepath.Join(repoRoot, "config", "crd", "bases"))
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("rejected", func(t *testing.T) {
		user := func(name string, f func(*authv1alpha1.ComfyUserSpec)) *authv1alpha1.ComfyUser {
			u := &authv1alpha1.ComfyUser{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
				Spec: authv1alpha1.ComfyUserSpec{Username: "valid_name"}}
			f(&u.Spec)
			return u
		}
		role := func(f func(*authv1alpha1.ComfyRoleSpec)) *authv1alpha1.ComfyRole {
			r := &authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"}}
			f(&r.Spec)
			return r
		}
		rule := func(f func(*authv1alpha1.IPRuleSpec)) *authv1alpha1.IPRule {
			r := &authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"},
				Spec: authv1alpha1.IPRuleSpec{Action: authv1alpha1.ActionDeny, CIDRs: []string{"10.0.0.0/8"}}}
			f(&r.Spec)
			return r
		}
		for _, tc := range []struct {
			name string
			obj  client.Object
			want []string // substrings of the error: the field and the reason
		}{
			{"username too short", user("u1", func(s *authv1alpha1.ComfyUserSpec) { s.Username = "ab" }), []string{"spec.username", "at least 3"}},
			{"username with a dash", user("u2", func(s *authv1alpha1.ComfyUserSpec) { s.Username = "bad-name" }), []string{"spec.username", "should match"}},
			{"username reserved", user("u3", func(s *authv1alpha1.ComfyUserSpec) { s.Username = "Guest" }), []string{"spec.username", "reserved"}},
			{"username too long", user("u4", func(s *authv1alpha1.ComfyUserSpec) { s.Username = strings.Repeat("a", 129) }), []string{"spec.username", "128"}},
			{"unknown deletion policy", user("u5", func(s *authv1alpha1.ComfyUserSpec) { s.DeletionPolicy = "Keep" }), []string{"spec.deletionPolicy", "Disable"}},
			{"name too long", user(strings.Repeat("n", 64), func(*authv1alpha1.ComfyUserSpec) {}), []string{"metadata.name", "63"}},
			{"unknown permission", role(func(s *authv1alpha1.ComfyRoleSpec) { s.Permissions = map[string]bool{"can_fly": true, "can_run": true} }),
				[]string{"spec.permissions", "unknown permission name: the known ones are can_run"}},
			{"unsupported permission", role(func(s *authv1alpha1.ComfyRoleSpec) {
				s.Permissions = map[string]bool{"can_login_locally_without_auth": true}
			}),
				[]string{"spec.permissions", "can_login_locally_without_auth: not supported, by design"}},
			{"bad UI flag", role(func(s *authv1alpha1.ComfyRoleSpec) { s.UI = map[string]bool{"show_queue": true} }), []string{"spec.ui", "ui_, cat_ or settings_"}},
			{"bad CIDR", rule(func(s *authv1alpha1.IPRuleSpec) { s.CIDRs = []string{"192.0.2.1", "10.0.0.0/33"} }), []string{"spec.cidrs", "IP address or a CIDR", "not: 10.0.0.0/33"}},
			{"not an address", rule(func(s *authv1alpha1.IPRuleSpec) { s.CIDRs = []string{"example.com"} }), []string{"spec.cidrs", "IP address or a CIDR"}},
			{"bad action", rule(func(s *authv1alpha1.IPRuleSpec) { s.Action = "Block" }), []string{"spec.action", "Allow"}},
			{"no CIDRs", rule(func(s *authv1alpha1.IPRuleSpec) { s.CIDRs = nil }), []string{"spec.cidrs"}},
			{"unknown model folder", role(func(s *authv1alpha1.ComfyRoleSpec) { s.Models = grant("lorass", "x") }), []string{"spec.models[0].folder", "checkpoints"}},
			{"model pattern with ..", role(func(s *authv1alpha1.ComfyRoleSpec) { s.Models = grant("loras", "ok.safetensors", "sdxl/../x") }),
				[]string{"spec.models[0].patterns", "sdxl/../x has a . or .. segment"}},
			{"absolute model pattern", user("u6", func(s *authv1alpha1.ComfyUserSpec) { s.Models = grant("vae", "/etc/x") }),
				[]string{"spec.models[0].patterns", "/etc/x is not a relative path"}},
			{"model pattern with a backslash", user("u7", func(s *authv1alpha1.ComfyUserSpec) { s.Models = grant("vae", `a\b`) }),
				[]string{"spec.models[0].patterns", "is not a relative path"}},
			{"model pattern with a bad **", role(func(s *authv1alpha1.ComfyRoleSpec) { s.Models = grant("loras", "sdxl**") }),
				[]string{"spec.models[0].patterns", "sdxl**: ** must be a whole segment"}},
			{"model pattern with an open [", role(func(s *authv1alpha1.ComfyRoleSpec) { s.Models = grant("loras", "a[bc") }),
				[]string{"spec.models[0].patterns", "a[bc has an unclosed or empty [ ]"}},
			{"model grant without patterns", role(func(s *authv1alpha1.ComfyRoleSpec) { s.Models = grant("loras") }), []string{"spec.models[0].patterns"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := c.Create(ctx, tc.obj)
				if err == nil {
					_ = c.Delete(ctx, tc.obj)
					t.Fatal("accepted")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not contain %q", err, w)
					}
				}
			})
		}

		// Valid model grants pass.
		okRole := role(func(s *authv1alpha1.ComfyRoleSpec) {
			s.Models = append(grant("loras", "sdxl/*", "sdxl/**", "**/*.safetensors", "neg-[a-c]?.pt", "[^x]y"), grant("clip", "t5.safetensors")...)
		})
		okRole.Name = "models-ok"
		if err := c.Create(ctx, okRole); err != nil {
			t.Fatalf("valid model grants refused: %v", err)
		}
		// Valid v4 and v6 entries pass; username and roleName cannot change.
		ok := rule(func(s *authv1alpha1.IPRuleSpec) { s.CIDRs = []string{"192.0.2.1", "2001:db8::/32", "::1"} })
		ok.Name = "ok"
		if err := c.Create(ctx, ok); err != nil {
			t.Fatalf("valid IPRule refused: %v", err)
		}
		u := user("immutable", func(*authv1alpha1.ComfyUserSpec) {})
		if err := c.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		if u.Spec.DeletionPolicy != authv1alpha1.DeletionDisable || u.Spec.Role != "user" {
			t.Fatalf("defaults not applied: %+v", u.Spec)
		}
		u.Spec.Username = "other_name"
		if err := c.Update(ctx, u); err == nil || !strings.Contains(err.Error(), "spec.username") || !strings.Contains(err.Error(), "immutable") {
			t.Fatalf("username change: %v", err)
		}
	})

	t.Run("samples", func(t *testing.T) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "samples"}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "*.yaml"))
		n := 0
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			for _, obj := range decodeAll(t, f) {
				obj.SetNamespace(ns.Name)
				if err := c.Create(ctx, obj); err != nil {
					t.Fatalf("%s: %s %s: %v", filepath.Base(f), obj.GetKind(), obj.GetName(), err)
				}
				n++
			}
		}
		var users authv1alpha1.ComfyUserList
		if err := c.List(ctx, &users, client.InNamespace(ns.Name)); err != nil || len(users.Items) != 2 || n < 6 {
			t.Fatalf("applied %d objects, %d ComfyUsers: %v", n, len(users.Items), err)
		}
	})
}

func grant(folder string, patterns ...string) []authv1alpha1.ModelGrant {
	return []authv1alpha1.ModelGrant{{Folder: folder, Patterns: patterns}}
}

func decodeAll(t *testing.T, path string) []*unstructured.Unstructured {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			out = append(out, &u)
		}
	}
}
