package store_test

import (
	"errors"
	"testing"

	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func TestModelGrants(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		u := mustUser(t, s, "grantee", false)
		before, _ := s.Versions(ctx)
		sdxl := modelgrant.Grant{Folder: "loras", Pattern: "sdxl/*"}
		flux := modelgrant.Grant{Folder: "checkpoints", Pattern: "flux1-dev.safetensors"}
		if err := s.ReplaceOwnedGrants(ctx, "ComfyRole/studio/artists", "user", "", []modelgrant.Grant{sdxl}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceOwnedGrants(ctx, "ComfyUser/studio/grantee", "", u.ID, []modelgrant.Grant{flux}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceOwnedGrants(ctx, "ComfyUser/studio/grantee", "", u.ID, []modelgrant.Grant{{Folder: "loras", Pattern: "../x"}}); !errors.Is(err, modelgrant.ErrPattern) {
			t.Fatalf("a bad pattern: %v", err)
		}
		vae := modelgrant.Grant{Folder: "vae", Pattern: "**"}
		if err := s.AddGrant(ctx, u.ID, vae, "owner"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddGrant(ctx, u.ID, vae, "owner"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("the same runtime grant twice: %v", err)
		}
		if after, _ := s.Versions(ctx); after[store.TopicGrants] <= before[store.TopicGrants] {
			t.Error("writing grants does not move their change counter")
		}
		all, err := s.Grants(ctx)
		if err != nil || len(all) != 3 {
			t.Fatalf("Grants = %+v, %v", all, err)
		}
		// A resource's grant cannot be removed through the API; the answer names the resource.
		var owned *store.OwnedError
		if err := s.DeleteGrant(ctx, u.ID, "user", flux); !errors.As(err, &owned) || owned.OwnerRef != "ComfyUser/studio/grantee" {
			t.Errorf("deleting the ComfyUser's grant: %v", err)
		}
		if err := s.DeleteGrant(ctx, u.ID, "user", sdxl); !errors.As(err, &owned) || owned.OwnerRef != "ComfyRole/studio/artists" {
			t.Errorf("deleting the role's grant: %v", err)
		}
		if err := s.DeleteGrant(ctx, u.ID, "user", modelgrant.Grant{Folder: "vae", Pattern: "x"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting a grant nobody made: %v", err)
		}
		if err := s.DeleteGrant(ctx, u.ID, "user", vae); err != nil {
			t.Fatal(err)
		}
		// The operator replaces what a resource owns, and nothing else.
		if err := s.AddGrant(ctx, u.ID, vae, "owner"); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceOwnedGrants(ctx, "ComfyUser/studio/grantee", "", u.ID, nil); err != nil {
			t.Fatal(err)
		}
		if all, _ = s.Grants(ctx); len(all) != 2 {
			t.Fatalf("after the resource's grants are gone: %+v", all)
		}
		// A deleted user's grants go with them.
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if all, _ = s.Grants(ctx); len(all) != 1 || all[0].Role != "user" {
			t.Fatalf("after the user is deleted: %+v", all)
		}
		// Listed models: one list per source, replaced whole; an unchanged list writes nothing;
		// ComfyUI's list does not move the grants' counter (no cache holds it).
		m := []store.ListedModel{{Folder: "loras", Name: "s3/a.safetensors"}, {Folder: "vae", Name: "b.safetensors"}}
		if err := s.SetListedModels(ctx, "S3Mount/studio/bucket", m); err != nil {
			t.Fatal(err)
		}
		v1, _ := s.Versions(ctx)
		if err := s.SetListedModels(ctx, "S3Mount/studio/bucket", m); err != nil {
			t.Fatal(err)
		}
		if err := s.SetListedModels(ctx, store.SourceComfyUI, m); err != nil {
			t.Fatal(err)
		}
		if v2, _ := s.Versions(ctx); v2[store.TopicGrants] != v1[store.TopicGrants] {
			t.Error("an unchanged S3 list or ComfyUI's list moved the grants' counter")
		}
		if err := s.SetListedModels(ctx, "S3Mount/studio/other", m[:1]); err != nil {
			t.Fatal(err)
		}
		if err := s.SetListedModels(ctx, "S3Mount/studio/bucket", m[1:]); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ListedModels(ctx, ""); err != nil || len(got) != 4 {
			t.Fatalf("ListedModels = %+v, %v", got, err)
		}
		if got, err := s.ListedModels(ctx, "S3Mount/studio/bucket"); err != nil || len(got) != 1 || got[0].Name != "b.safetensors" {
			t.Fatalf("the bucket's models = %+v, %v", got, err)
		}
		// Orphaned: a resource's grants become the user's own.
		v := mustUser(t, s, "orphan", false)
		if err := s.ReplaceOwnedGrants(ctx, "ComfyUser/studio/orphan", "", v.ID, []modelgrant.Grant{flux}); err != nil {
			t.Fatal(err)
		}
		if err := s.DisownGrants(ctx, "ComfyUser/studio/orphan"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGrant(ctx, v.ID, "user", flux); err != nil {
			t.Errorf("an orphaned grant is not the user's own: %v", err)
		}
	})
}
