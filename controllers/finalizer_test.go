package controllers_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/controllers"
	"github.com/mss-login/mss-login/internal/store"
)

// tcpProxy stands between the manager and a database server so a test can make the
// database unreachable and bring it back, without stopping the shared server.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go p.serve()
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// setDown cuts every connection and refuses new ones (true), or lets them through (false).
func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func (p *tcpProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Finalizers finish after the database comes back: while it is unreachable the resources stay,
// and the status says why.
func TestFinalizersWithDatabaseDown(t *testing.T) {
	var proxy *tcpProxy
	h := newHarness(t, store.PostgreSQL, withManagerDatabase(func(o store.Options) store.Options {
		proxy = newTCPProxy(t, net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
		o.Host, o.Port = "127.0.0.1", proxy.port()
		return o
	}))
	h.secret("erin-pw", map[string]string{"password": "erin-pw-1"})
	h.create(user("erin", "erin", func(u *authv1alpha1.ComfyUser) { u.Spec.DeletionPolicy = authv1alpha1.DeletionDelete }))
	var u authv1alpha1.ComfyUser
	h.ready("erin", &u)
	h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "block"}, Spec: authv1alpha1.IPRuleSpec{Action: authv1alpha1.ActionDeny, CIDRs: []string{"192.0.2.0/24"}}})
	var r authv1alpha1.IPRule
	h.ready("block", &r)
	addr := netip.MustParseAddr("192.0.2.200")
	h.store.BanIP(h.ctx, addr, time.Now(), time.Now().Add(time.Hour), "x")
	var l authv1alpha1.Lockout
	h.eventually(5*time.Second, "ban mirrored", func() error { return h.get("ip-192-0-2-200", &l) })

	proxy.setDown(true)
	h.delete("erin", &u)
	h.delete("block", &r)
	h.delete("ip-192-0-2-200", &l)
	h.notReady("erin", &u, "ReleaseFailed")
	h.notReady("block", &r, "ReleaseFailed")
	h.eventually(10*time.Second, "Lockout status says why", func() error {
		if err := h.get("ip-192-0-2-200", &l); err != nil {
			return err
		}
		if len(l.Status.Conditions) == 0 || l.Status.Conditions[0].Reason != "LiftFailed" {
			return fmt.Errorf("conditions %+v", l.Status.Conditions)
		}
		return nil
	})
	if _, err := h.userRow("erin"); err != nil {
		t.Fatal("the row went although the database was unreachable?")
	}

	proxy.setDown(false)
	h.gone("erin", &u, 15*time.Second)
	h.gone("block", &r, 15*time.Second)
	h.gone("ip-192-0-2-200", &l, 15*time.Second)
	if _, err := h.userRow("erin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("row still there: %v", err)
	}
	if bans, _ := h.store.Bans(h.ctx, time.Now()); len(bans) != 0 {
		t.Fatalf("ban still there: %+v", bans)
	}
	if rows := ipRows(t, h, "block"); len(rows) != 0 {
		t.Fatalf("ip rows still there: %v", rows)
	}
}

// Finalizers finish when the rows are already gone.
func TestFinalizersWhenRowsGone(t *testing.T) {
	h := newHarness(t, store.SQLite)
	h.secret("fay-pw", map[string]string{"password": "fay-pw-1"})
	h.create(user("fay", "fay"))
	var u authv1alpha1.ComfyUser
	h.ready("fay", &u)
	h.create(&authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "tmp-role"}, Spec: authv1alpha1.ComfyRoleSpec{}})
	var cr authv1alpha1.ComfyRole
	h.ready("tmp-role", &cr)
	h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "gone"}, Spec: authv1alpha1.IPRuleSpec{Action: authv1alpha1.ActionDeny, CIDRs: []string{"192.0.2.1"}}})
	var r authv1alpha1.IPRule
	h.ready("gone", &r)
	addr := netip.MustParseAddr("192.0.2.99")
	h.store.BanIP(h.ctx, addr, time.Now(), time.Time{}, "x")
	var l authv1alpha1.Lockout
	h.eventually(5*time.Second, "ban mirrored", func() error { return h.get("ip-192-0-2-99", &l) })

	// Stop the manager, remove every row behind its back, then delete the resources.
	h.stopMgr()
	row, _ := h.userRow("fay")
	if err := h.store.DeleteUser(h.ctx, row.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeleteRole(h.ctx, "tmp-role"); err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeleteIPRulesOwnedBy(h.ctx, "IPRule/"+h.ns+"/gone"); err != nil {
		t.Fatal(err)
	}
	h.delete("fay", &u)
	h.delete("tmp-role", &cr)
	h.delete("gone", &r)
	h.delete("ip-192-0-2-99", &l)
	if err := h.store.Unban(h.ctx, addr); err != nil {
		t.Fatal(err)
	}
	h.startManager()
	h.gone("fay", &u, 10*time.Second)
	h.gone("tmp-role", &cr, 10*time.Second)
	h.gone("gone", &r, 10*time.Second)
	h.gone("ip-192-0-2-99", &l, 10*time.Second)
}

// A manager restart, even in the middle of applying, changes nothing once things are applied.
func TestRestartIsIdempotent(t *testing.T) {
	h := newHarness(t, store.SQLite)
	h.secret("gil-pw", map[string]string{"password": "gil-pw-1"})
	h.create(&authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "painters"}, Spec: authv1alpha1.ComfyRoleSpec{Permissions: map[string]bool{"can_run": true}}})
	h.create(user("gil", "gil", func(u *authv1alpha1.ComfyUser) { u.Spec.Role = "painters" }))
	h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "net"}, Spec: authv1alpha1.IPRuleSpec{Action: authv1alpha1.ActionAllow, CIDRs: []string{"10.1.0.0/16"}}})
	h.store.BanIP(h.ctx, netip.MustParseAddr("192.0.2.50"), time.Now(), time.Time{}, "x")
	// Stop mid-way: whatever was or was not applied by now.
	time.Sleep(300 * time.Millisecond)
	h.stopMgr()
	h.startManager()
	var u authv1alpha1.ComfyUser
	var cr authv1alpha1.ComfyRole
	var r authv1alpha1.IPRule
	var l authv1alpha1.Lockout
	h.ready("gil", &u)
	h.ready("painters", &cr)
	h.ready("net", &r)
	h.eventually(5*time.Second, "ban mirrored", func() error { return h.get("ip-192-0-2-50", &l) })

	type snapshot struct {
		user     store.User
		role     store.Role
		ips      []store.IPRule
		lockUID  string
		versions map[string]int64
	}
	take := func() snapshot {
		row, _ := h.userRow("gil")
		role, _ := h.store.Role(h.ctx, "painters")
		ips, _ := h.store.IPRulesOwnedBy(h.ctx, "IPRule/"+h.ns+"/net")
		var lo authv1alpha1.Lockout
		h.get("ip-192-0-2-50", &lo)
		v, _ := h.store.Versions(h.ctx)
		return snapshot{row, role, ips, string(lo.UID), v}
	}
	time.Sleep(time.Second)
	before := take()
	h.stopMgr()
	h.startManager()
	time.Sleep(5 * time.Second) // the resync (2 s here) runs at least twice
	after := take()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("a restart changed the database or the objects:\nbefore %+v\nafter  %+v", before, after)
	}
}

// A resource that was Ready gets one Warning when it is refused for a new reason (the reason
// of the condition before this check is compared, not the one just written over it): a
// ComfyUser whose role goes missing, whose Secret is deleted, and every kind while the database
// is down.
func TestWarningsWhenReadyBreaks(t *testing.T) {
	var proxy *tcpProxy
	h := newHarness(t, store.PostgreSQL, withManagerDatabase(func(o store.Options) store.Options {
		proxy = newTCPProxy(t, net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
		o.Host, o.Port = "127.0.0.1", proxy.port()
		return o
	}))
	h.secret("fay-pw", map[string]string{"password": "fay-pw-1-long"})
	h.create(user("fay", "fay"))
	var u authv1alpha1.ComfyUser
	h.ready("fay", &u)
	h.create(&authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "painters"}, Spec: authv1alpha1.ComfyRoleSpec{Permissions: map[string]bool{"can_run": true}}})
	var role authv1alpha1.ComfyRole
	h.ready("painters", &role)
	h.create(&authv1alpha1.IPRule{ObjectMeta: metav1.ObjectMeta{Name: "blk"}, Spec: authv1alpha1.IPRuleSpec{Action: authv1alpha1.ActionDeny, CIDRs: []string{"198.51.100.0/24"}}})
	var rule authv1alpha1.IPRule
	h.ready("blk", &rule)

	h.update("fay", &u, func() { u.Spec.Role = "no-such-role" })
	h.notReady("fay", &u, "RoleNotFound")
	h.waitEvent("fay", "RoleNotFound")
	h.update("fay", &u, func() { u.Spec.Role = "user" })
	h.ready("fay", &u)

	var sec corev1.Secret
	if err := h.get("fay-pw", &sec); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Delete(h.ctx, &sec); err != nil {
		t.Fatal(err)
	}
	h.notReady("fay", &u, "SecretNotFound")
	h.waitEvent("fay", "SecretNotFound")
	h.secret("fay-pw", map[string]string{"password": "fay-pw-1-long"})
	h.ready("fay", &u)

	proxy.setDown(true)
	h.update("fay", &u, func() { u.Spec.Disabled = true })
	h.update("painters", &role, func() { role.Spec.Permissions["can_upload"] = true })
	h.update("blk", &rule, func() { rule.Spec.CIDRs = append(rule.Spec.CIDRs, "203.0.113.0/24") })
	for _, c := range []struct {
		name string
		obj  controllers.Object
	}{{"fay", &u}, {"painters", &role}, {"blk", &rule}} {
		h.notReady(c.name, c.obj, "DatabaseUnavailable")
		h.waitEvent(c.name, "DatabaseUnavailable")
	}
	proxy.setDown(false)
	h.ready("fay", &u)
}
