package controllers_test

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// Custom role: create → row; change → row; delete → gone. Built-in role: overridden while the
// resource exists, the original's defaults back after it is deleted.
func TestComfyRoleLifecycle(t *testing.T) {
	for _, b := range backends(store.SQLite, store.PostgreSQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			var r authv1alpha1.ComfyRole
			h.create(&authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "artists"}, Spec: authv1alpha1.ComfyRoleSpec{
				Permissions: map[string]bool{"can_run": true, "can_upload": true}, UI: map[string]bool{"ui_show_queue": true},
			}})
			h.ready("artists", &r)
			row, err := h.store.Role(h.ctx, "artists")
			if err != nil || !row.Permissions["can_run"] || !row.Permissions["can_upload"] || row.Permissions["can_access_manager"] ||
				!row.UI["ui_show_queue"] || row.OwnerRef != "ComfyRole/"+h.ns+"/artists" {
				t.Fatalf("row %+v, %v", row, err)
			}
			h.update("artists", &r, func() { r.Spec.Permissions["can_upload"] = false })
			h.eventually(5*time.Second, "permission change", func() error {
				row, _ := h.store.Role(h.ctx, "artists")
				if row.Permissions["can_upload"] {
					return errors.New("can_upload still true")
				}
				return nil
			})
			h.delete("artists", &r)
			h.gone("artists", &r, 10*time.Second)
			if _, err := h.store.Role(h.ctx, "artists"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("custom role not deleted: %v", err)
			}

			// Built-in override: unlisted flags keep the defaults.
			h.create(&authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "guest-override"}, Spec: authv1alpha1.ComfyRoleSpec{
				RoleName: "guest", Permissions: map[string]bool{"can_upload": true},
			}})
			h.ready("guest-override", &r)
			if !r.Status.Builtin {
				t.Fatal("status does not say the role is built in")
			}
			row, _ = h.store.Role(h.ctx, "guest")
			def, _ := roles.Default("guest")
			if !row.Permissions["can_upload"] || row.Permissions["can_run"] != def.Permissions["can_run"] {
				t.Fatalf("override: %+v", row.Permissions)
			}
			h.delete("guest-override", &r)
			h.gone("guest-override", &r, 10*time.Second)
			row, _ = h.store.Role(h.ctx, "guest")
			if row.Permissions["can_upload"] != def.Permissions["can_upload"] || row.OwnerRef != "" || !row.Builtin {
				t.Fatalf("built-in role not restored: %+v", row)
			}
		})
	}
}

func ipRows(t testing.TB, h *harness, name string) []string {
	rows, err := h.store.IPRulesOwnedBy(h.ctx, "IPRule/"+h.ns+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r.Source != store.SourceResource {
			t.Fatalf("row with source %q", r.Source)
		}
		out = append(out, r.Action+" "+r.CIDR.String())
	}
	sort.Strings(out)
	return out
}

// IPRule: rows with source resource; CIDR changes; expiry removes them and the status says so;
// delete removes them.
func TestIPRuleLifecycle(t *testing.T) {
	for _, b := range backends(store.SQLite, store.PostgreSQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			var r authv1alpha1.IPRule
			h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "office"}, Spec: authv1alpha1.IPRuleSpec{
				Action: authv1alpha1.ActionAllow, CIDRs: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"}, Comment: "office",
			}})
			h.ready("office", &r)
			if got := fmt.Sprint(ipRows(t, h, "office")); got != "[allow 10.0.0.0/8 allow 192.0.2.7/32 allow 2001:db8::/32]" {
				t.Fatalf("rows %s", got)
			}
			h.update("office", &r, func() {
				r.Spec.CIDRs = []string{"10.0.0.0/8", "198.51.100.0/24"}
				r.Spec.Action = authv1alpha1.ActionDeny
			})
			h.eventually(5*time.Second, "CIDR change", func() error {
				if got := fmt.Sprint(ipRows(t, h, "office")); got != "[deny 10.0.0.0/8 deny 198.51.100.0/24]" {
					return errors.New(got)
				}
				return nil
			})

			exp := metav1.NewTime(time.Now().Add(3 * time.Second))
			h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "temp"}, Spec: authv1alpha1.IPRuleSpec{
				Action: authv1alpha1.ActionDeny, CIDRs: []string{"203.0.113.9"}, ExpiresAt: &exp,
			}})
			h.ready("temp", &r)
			rows, _ := h.store.IPRulesOwnedBy(h.ctx, "IPRule/"+h.ns+"/temp")
			if len(rows) != 1 || rows[0].ExpiresAt.Unix() != exp.Unix() || rows[0].CIDR != netip.MustParsePrefix("203.0.113.9/32") {
				t.Fatalf("temp rows %+v", rows)
			}
			c := h.condition("temp", &r, authv1alpha1.ConditionReady, metav1.ConditionFalse, "Expired", 10*time.Second)
			if len(ipRows(t, h, "temp")) != 0 || !r.Status.Expired {
				t.Fatalf("expired rule still has rows or status: %v %+v", c, r.Status)
			}

			h.delete("office", &r)
			h.gone("office", &r, 10*time.Second)
			if len(ipRows(t, h, "office")) != 0 {
				t.Fatal("rows remain after delete")
			}
		})
	}
}

// Drift: rows changed behind the operator's back are put back at the next resync, with an
// Event.
func TestDriftCorrected(t *testing.T) {
	h := newHarness(t, store.SQLite)
	h.secret("dave-pw", map[string]string{"password": "dave-pw-1"})
	h.create(user("dave", "dave"))
	var u authv1alpha1.ComfyUser
	h.ready("dave", &u)
	h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "deny"}, Spec: authv1alpha1.IPRuleSpec{
		Action: authv1alpha1.ActionDeny, CIDRs: []string{"198.51.100.1"},
	}})
	var r authv1alpha1.IPRule
	h.ready("deny", &r)

	row, _ := h.userRow("dave")
	row.Role, row.Disabled = "admin", true // as the admin API or SQL would
	if err := h.store.UpdateUser(h.ctx, row); err != nil {
		t.Fatal(err)
	}
	if err := h.store.SetPasswordHash(h.ctx, row.ID, "$2b$12$abcdefghijklmnopqrstuu5Xz1R8Tn3cB/3b9N9xG0yq2s7b9f1cS"); err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeleteIPRulesOwnedBy(h.ctx, "IPRule/"+h.ns+"/deny"); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, "drift put back", func() error {
		r, _ := h.userRow("dave")
		if r.Role != "user" || r.Disabled || len(ipRows(t, h, "deny")) != 1 {
			return fmt.Errorf("row %s disabled=%v, %d ip rows", r.Role, r.Disabled, len(ipRows(t, h, "deny")))
		}
		if res, _ := verifyResult(r.PasswordHash, "dave-pw-1"); !res {
			return errors.New("password not put back")
		}
		return nil
	})
	h.waitEvent("dave", "DriftCorrected")
	h.waitEvent("deny", "DriftCorrected")
}
