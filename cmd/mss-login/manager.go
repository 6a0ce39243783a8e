package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/controllers"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/notify"
	"github.com/mss-login/mss-login/internal/releasecheck"
	"github.com/mss-login/mss-login/internal/store"
)

// managerFlags are the flags of `mss-login manager`.
type managerFlags struct {
	kubeconfig       string
	metricsAddr      string
	metricsSecure    bool
	probeAddr        string
	leaderElect      bool
	namespace        string
	resync           time.Duration
	concurrency      int
	enableHTTP2      bool
	leaderElectionID string
	s3               s3Flags
}

func managerCmd(g *globals) *cobra.Command {
	f := managerFlags{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the operator: ComfyUser, ComfyRole and IPRule into the users database, bans out as Lockouts",
		Long: "Runs the controllers against the cluster named by --kubeconfig (else $KUBECONFIG, the in-cluster\n" +
			"service account, or ~/.kube/config) and the users database named by the configuration.\n" +
			"The database is migrated at start. See docs/operator.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			return runManager(cmd.Context(), cfg, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443",
		"metrics endpoint (HTTPS with Kubernetes authn/authz unless --metrics-secure=false); 0 disables it")
	fl.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve metrics over HTTPS, for callers allowed to get /metrics")
	fl.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "/healthz and /readyz (readiness includes a database ping)")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader, for more than one replica")
	fl.StringVar(&f.leaderElectionID, "leader-election-id", "mss-login-manager.auth.mss-login.dev", "name of the leader election Lease")
	fl.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lockout objects (default $POD_NAMESPACE, else default)")
	fl.DurationVar(&f.resync, "resync-period", 5*time.Minute, "how often every resource is compared with the database to correct drift (+ up to 20% jitter)")
	fl.IntVar(&f.concurrency, "concurrency", 4, "resources of one kind reconciled at once")
	fl.BoolVar(&f.enableHTTP2, "enable-http2", false, "serve metrics over HTTP/2 (off: HTTP/2 Rapid Reset, CVE-2023-44487)")
	f.s3.register(fl)
	return cmd
}

func runManager(ctx context.Context, cfg *config.Config, f managerFlags) error {
	ctrl.SetLogger(zap.New(zap.UseDevMode(false)))
	if f.namespace == "" {
		f.namespace = "default"
	}
	restCfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	// The database may be down at start (maintenance): the manager starts anyway, reports it on
	// /readyz, and migrates and reconciles once it answers; leader election and the webhook work
	// meanwhile.
	o := storeOptions(cfg)
	o.Lazy = true
	st, err := store.Open(ctx, o)
	if err != nil {
		return err
	}
	defer st.Close()
	gate := &databaseGate{st: st}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))

	metricsOpts := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.metricsSecure}
	if !f.enableHTTP2 {
		metricsOpts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	if f.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        f.probeAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              f.leaderElectionID,
		LeaderElectionNamespace:       f.namespace,
		LeaderElectionReleaseOnCancel: true,
		// managedFields are most of a cached object's size and no reconciler reads them.
		Cache:         cache.Options{ByObject: controllers.CacheByObject(f.namespace), DefaultTransform: cache.TransformStripManagedFields()},
		WebhookServer: f.s3.server(),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("database", gate.check); err != nil {
		return err
	}
	if err := mgr.Add(gate); err != nil {
		return err
	}
	if err := controllers.Setup(ctx, mgr, st, controllers.Options{
		Resync:           f.resync,
		Concurrency:      f.concurrency,
		LockoutNamespace: f.namespace,
		LockoutMax:       cfg.LockoutMirror.MaxObjects,
		FailureWindow:    time.Duration(cfg.FailureWindowMinutes) * time.Minute,
		DatabaseReady:    gate.ready,
	}); err != nil {
		return err
	}
	// Leader only; tells operators about new releases (docs/release-checks.md). Events go to f.namespace.
	if err := releasecheck.Setup(mgr, st, cfg, f.namespace); err != nil {
		return err
	}
	if err := setupS3(ctx, mgr, restCfg, f.s3, f.namespace, st); err != nil {
		return err
	}
	// Leader only, like the auth servers' notifiers: each sink's cursor lease in the database
	// lets one of them send each event (docs/authserver.md#notifications).
	if sinks := notify.Sinks(cfg); len(sinks) > 0 {
		n := notify.New(st, sinks, slog.New(logr.ToSlogHandler(ctrl.Log.WithName("notify"))), ctrlmetrics.Registry, notify.OptionsFrom(cfg))
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { n.Run(ctx); return nil })); err != nil {
			return err
		}
	}
	ctrl.Log.Info("starting manager", "database", st.Where(), "lockoutNamespace", f.namespace, "leaderElect", f.leaderElect)
	return mgr.Start(ctx)
}

// restConfig honours --kubeconfig, then controller-runtime's usual order.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

// databaseGate migrates the users database once it answers, retrying with backoff from the
// manager's start, and until then keeps the manager unready and the reconcilers waiting.
type databaseGate struct {
	st       *store.Store
	migrated atomic.Bool
	mu       sync.Mutex
	lastErr  error
}

// Start runs on every replica, leader or not (NeedLeaderElection): each reports its own readiness.
func (g *databaseGate) Start(ctx context.Context) error {
	log := ctrl.Log.WithName("database")
	wait := time.Second
	for {
		_, err := g.st.Migrate(ctx)
		if err == nil {
			g.migrated.Store(true)
			log.Info("users database ready", "database", g.st.Where())
			return nil
		}
		g.mu.Lock()
		first := g.lastErr == nil
		g.lastErr = err
		g.mu.Unlock()
		if first {
			log.Error(err, "users database not reachable at start; retrying with backoff, not ready meanwhile")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (g *databaseGate) NeedLeaderElection() bool { return false }

// ready is nil once the database is migrated.
func (g *databaseGate) ready() error {
	if g.migrated.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastErr != nil {
		return fmt.Errorf("waiting for the users database: %w", g.lastErr)
	}
	return errors.New("waiting for the users database: not migrated yet")
}

// check is the readyz check: unready until migrated, and while the database does not answer.
func (g *databaseGate) check(r *http.Request) error {
	if err := g.ready(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := g.st.Ping(ctx); err != nil {
		return errors.New("users database is not reachable")
	}
	return nil
}
