package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/controllers"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// One control plane for the package: every test works in namespaces of its own with a
// manager whose cache sees only those.
var (
	cp     = testenv.SharedControlPlane{CRDPaths: []string{filepath.Join("..", "config", "crd", "bases")}}
	scheme = runtime.NewScheme()
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
}

func TestMain(m *testing.M) { testenv.Main(m, &cp) }

// harness is one test's world: a namespace, a database, a client and a running manager.
type harness struct {
	t       testing.TB
	ctx     context.Context
	cfg     *rest.Config
	c       client.Client
	ns      string
	dbOpts  store.Options
	mgrDB   store.Options // the manager's database (default dbOpts); a test may put a proxy between
	store   *store.Store
	opts    controllers.Options
	reg     *prometheus.Registry
	stopMgr func()

	mgrDBFunc func(store.Options) store.Options
}

type harnessOption func(*harness)

func withOptions(f func(*controllers.Options)) harnessOption {
	return func(h *harness) { f(&h.opts) }
}

// withManagerDatabase gives the manager its own way to the test's database (a proxy):
// f gets the test's options and returns the manager's.
func withManagerDatabase(f func(store.Options) store.Options) harnessOption {
	return func(h *harness) { h.mgrDBFunc = f }
}

func newHarness(t testing.TB, backend store.Backend, opts ...harnessOption) *harness {
	t.Helper()
	cfg := cp.Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, cfg: cfg, c: c, ns: testenv.Namespace(t, ctx, c)}
	h.opts = controllers.Options{
		Resync: 2 * time.Second, RetryBase: 200 * time.Millisecond, RetryMax: 2 * time.Second,
		LockoutNamespace: h.ns, LockoutPoll: 250 * time.Millisecond,
	}
	for _, o := range opts {
		o(h)
	}
	if h.dbOpts.Backend == "" {
		h.dbOpts = testenv.Database(t, backend)
	}
	h.store = testenv.OpenOptions(t, h.dbOpts)
	h.mgrDB = h.dbOpts
	if h.mgrDBFunc != nil {
		h.mgrDB = h.mgrDBFunc(h.dbOpts)
	}
	h.startManager()
	return h
}

// startManager runs the controllers against h.store, watching only h.ns (plus extra
// namespaces the test made). Each call is a fresh manager, as after a restart.
func (h *harness) startManager(extraNamespaces ...string) {
	h.t.Helper()
	nsCfg := map[string]cache.Config{h.ns: {}}
	for _, n := range extraNamespaces {
		nsCfg[n] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(h.cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: nsCfg},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	o := h.opts
	o.Metrics = controllers.NewMetrics(h.reg)
	// A separate store handle for the manager, so a test can stop it (restart) or point
	// it at a proxy without closing the test's own handle.
	mst := testenv.OpenOptions(h.t, h.mgrDB)
	if err := controllers.Setup(h.ctx, mgr, mst, o); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	h.stopMgr = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("manager: %v", err)
		}
	}
	h.t.Cleanup(h.stopMgr)
}

// eventually retries f until it returns nil or the timeout passes.
func (h *harness) eventually(timeout time.Duration, what string, f func() error) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

func (h *harness) create(obj client.Object) {
	h.t.Helper()
	if obj.GetNamespace() == "" {
		obj.SetNamespace(h.ns)
	}
	if err := h.c.Create(h.ctx, obj); err != nil {
		h.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func (h *harness) get(name string, obj client.Object) error {
	return h.c.Get(h.ctx, types.NamespacedName{Namespace: h.ns, Name: name}, obj)
}

// update re-reads obj and applies mutate, retrying on conflicts.
func (h *harness) update(name string, obj client.Object, mutate func()) {
	h.t.Helper()
	h.eventually(10*time.Second, "update "+name, func() error {
		if err := h.get(name, obj); err != nil {
			return err
		}
		mutate()
		return h.c.Update(h.ctx, obj)
	})
}

func (h *harness) delete(name string, obj client.Object) {
	h.t.Helper()
	if err := h.get(name, obj); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Delete(h.ctx, obj); err != nil {
		h.t.Fatal(err)
	}
}

// gone waits until the object no longer exists (its finalizer finished).
func (h *harness) gone(name string, obj client.Object, timeout time.Duration) {
	h.t.Helper()
	h.eventually(timeout, fmt.Sprintf("%T %s deleted", obj, name), func() error {
		err := h.get(name, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there (finalizers %v)", obj.GetFinalizers())
	})
}

// condition waits until the object's condition has status and reason ("" = any) and
// returns it.
func (h *harness) condition(name string, obj controllers.Object, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) metav1.Condition {
	h.t.Helper()
	var got metav1.Condition
	h.eventually(timeout, fmt.Sprintf("%s %s=%s/%s", name, typ, status, reason), func() error {
		if err := h.get(name, obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(obj.GetSyncStatus().Conditions, typ)
		if c == nil {
			return errors.New("no condition yet")
		}
		if c.Status != status || (reason != "" && c.Reason != reason) || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("condition is %s/%s (gen %d of %d): %s", c.Status, c.Reason, c.ObservedGeneration, obj.GetGeneration(), c.Message)
		}
		got = *c
		return nil
	})
	return got
}

func (h *harness) ready(name string, obj controllers.Object) metav1.Condition {
	h.t.Helper()
	return h.condition(name, obj, authv1alpha1.ConditionReady, metav1.ConditionTrue, "", 15*time.Second)
}

func (h *harness) notReady(name string, obj controllers.Object, reason string) metav1.Condition {
	h.t.Helper()
	return h.condition(name, obj, authv1alpha1.ConditionReady, metav1.ConditionFalse, reason, 15*time.Second)
}

// events returns the reasons of the Events about one object, in the test's namespace.
func (h *harness) events(name string) []string {
	var list eventsv1.EventList
	if err := h.c.List(h.ctx, &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

func (h *harness) waitEvent(name, reason string) {
	h.t.Helper()
	h.eventually(15*time.Second, "event "+reason+" on "+name, func() error {
		if got := h.events(name); !slices.Contains(got, reason) {
			return fmt.Errorf("events so far: %v", got)
		}
		return nil
	})
}

func (h *harness) secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, StringData: data}
	h.create(s)
	return s
}

func (h *harness) userRow(username string) (store.User, error) {
	return h.store.UserByUsernameKey(h.ctx, username)
}

// backends lists the databases the lifecycle tests run on; MSS_TEST_BACKENDS narrows it.
func backends(all ...store.Backend) []store.Backend {
	if v := os.Getenv("MSS_TEST_BACKENDS"); v != "" {
		var out []store.Backend
		for _, b := range all {
			if strings.Contains(v, string(b)) {
				out = append(out, b)
			}
		}
		return out
	}
	return all
}
