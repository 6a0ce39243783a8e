package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/controller/s3mount"
	"github.com/mss-login/mss-login/internal/predicates"
	"github.com/mss-login/mss-login/internal/store"
)

// Options configure the controllers.
type Options struct {
	// Resync is how often a resource is checked against the database to correct drift
	// (jittered by up to +20 %). Default 5 minutes.
	Resync time.Duration
	// RetryBase and RetryMax bound the exponential backoff after a failure (default 1 s, 5 min).
	RetryBase, RetryMax time.Duration
	// Concurrency is the number of resources of one kind reconciled at once (default 4).
	Concurrency int
	// LockoutNamespace receives the Lockout objects.
	LockoutNamespace string
	// LockoutMax caps the number of Lockout objects (lockout_mirror.max_objects).
	LockoutMax int
	// LockoutPoll is how often the mirror reads the change counters (default 1 s).
	LockoutPoll time.Duration
	// FailureWindow is failure_window_minutes: the window failed logins are counted in, for
	// the Attempts of a Lockout.
	FailureWindow time.Duration
	// Metrics to report to (default: registered with controller-runtime's registry).
	Metrics *Metrics
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// DatabaseReady, when set, says whether the users database may be used yet (the manager
	// started through an outage and has not migrated it): until then every resource is reported
	// DatabaseUnavailable and retried with backoff.
	DatabaseReady func() error
}

func (o *Options) defaults() {
	if o.Resync <= 0 {
		o.Resync = 5 * time.Minute
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.LockoutMax <= 0 {
		o.LockoutMax = 1000
	}
	if o.LockoutPoll <= 0 {
		o.LockoutPoll = time.Second
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = time.Hour
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockoutNamespace == "" {
		o.LockoutNamespace = "default"
	}
}

// Field indexes that map a change to the resources it concerns.
const (
	indexUsernameKey = "spec.usernameKey"         // ComfyUser: lower-cased username
	indexUserRole    = "spec.role"                // ComfyUser: role name
	indexUserSecret  = "spec.passwordSecretRef"   // ComfyUser: namespace/secret
	indexRoleName    = "status.effectiveRoleName" // ComfyRole: roleName or metadata.name
)

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers every controller and the lockout mirror with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, st *store.Store, o Options) error {
	o.defaults()
	d := deps{client: mgr.GetClient(), reader: mgr.GetAPIReader(), store: st, now: o.Now}
	if err := setupIndexes(ctx, mgr); err != nil {
		return err
	}
	copts := controller.Options{
		MaxConcurrentReconciles: o.Concurrency,
		RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](o.RetryBase, o.RetryMax),
	}
	// Status writes must not trigger a reconcile of their own: only spec changes and the
	// start of a deletion do.
	specChanged := builder.WithPredicates(predicates.SpecOrDeletion)

	roles := &reconciler[*authv1alpha1.ComfyRole]{
		Client: mgr.GetClient(), Kind: kindRole, New: func() *authv1alpha1.ComfyRole { return &authv1alpha1.ComfyRole{} },
		Syncer: roleSyncer{d}, Ready: o.DatabaseReady, Recorder: mgr.GetEventRecorder("mss-login-comfyrole"), Resync: o.Resync, Metrics: o.Metrics,
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("comfyrole").
		For(&authv1alpha1.ComfyRole{}, specChanged).
		Watches(&authv1alpha1.ComfyRole{}, mapTo(d.client, rolesWithSameName), specChanged).
		WithOptions(copts).Complete(roles); err != nil {
		return err
	}

	users := &reconciler[*authv1alpha1.ComfyUser]{
		Client: mgr.GetClient(), Kind: kindUser, New: func() *authv1alpha1.ComfyUser { return &authv1alpha1.ComfyUser{} },
		Syncer: userSyncer{deps: d, users: st}, Ready: o.DatabaseReady, Recorder: mgr.GetEventRecorder("mss-login-comfyuser"), Resync: o.Resync, Metrics: o.Metrics,
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("comfyuser").
		For(&authv1alpha1.ComfyUser{}, specChanged).
		Watches(&authv1alpha1.ComfyUser{}, mapTo(d.client, usersWithSameUsername), specChanged).
		Watches(&authv1alpha1.ComfyRole{}, mapTo(d.client, usersOfRole)).
		// Metadata only: a Secret's resourceVersion says that it changed; its value is read
		// (uncached) only then, so Secret values are never held in the manager's cache.
		WatchesMetadata(&corev1.Secret{}, mapTo(d.client, usersOfSecret)).
		WithOptions(copts).Complete(users); err != nil {
		return err
	}

	rules := &reconciler[*authv1alpha1.IPRule]{
		Client: mgr.GetClient(), Kind: kindIPRule, New: func() *authv1alpha1.IPRule { return &authv1alpha1.IPRule{} },
		Syncer: ipRuleSyncer{d}, Ready: o.DatabaseReady, Recorder: mgr.GetEventRecorder("mss-login-iprule"), Resync: o.Resync, Metrics: o.Metrics,
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("iprule").
		For(&authv1alpha1.IPRule{}, specChanged).
		WithOptions(copts).Complete(rules); err != nil {
		return err
	}

	return setupLockouts(mgr, d, o, copts)
}

func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &authv1alpha1.ComfyUser{}, indexUsernameKey, func(o client.Object) []string {
		return []string{usernameKey(o.(*authv1alpha1.ComfyUser).Spec.Username)}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &authv1alpha1.ComfyUser{}, indexUserRole, func(o client.Object) []string {
		return []string{o.(*authv1alpha1.ComfyUser).Spec.Role}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &authv1alpha1.ComfyUser{}, indexUserSecret, func(o client.Object) []string {
		u := o.(*authv1alpha1.ComfyUser)
		if u.Spec.PasswordSecretRef == nil {
			return nil
		}
		return []string{u.Namespace + "/" + u.Spec.PasswordSecretRef.Name}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &authv1alpha1.ComfyRole{}, indexRoleName, func(o client.Object) []string {
		return []string{o.(*authv1alpha1.ComfyRole).EffectiveRoleName()}
	})
}

// CacheByObject restricts the manager's cache of Lockouts to the operator's namespace, and of
// Pods to those the S3Mount webhook injected (the controller counts only those; caching every
// pod of the cluster would cost the manager its memory). The other kinds are watched in every
// namespace.
func CacheByObject(lockoutNamespace string) map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&authv1alpha1.Lockout{}: {Namespaces: map[string]cache.Config{lockoutNamespace: {}}},
		&corev1.Pod{}:           {Label: labels.SelectorFromSet(labels.Set{s3mount.LabelInjected: "true"})},
	}
}
