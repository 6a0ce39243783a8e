package releasecheck

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/version"
)

// Setup adds the release check to the manager, or logs once why it is off. Events are about
// the manager's namespace (see NamespaceRef), so `kubectl get events -n NS` shows them. tune
// lets tests shorten the delays.
func Setup(mgr manager.Manager, st Settings, cfg *config.Config, namespace string, tune ...func(*Options)) error {
	log := ctrl.Log.WithName("releasecheck")
	au := cfg.AutoUpdate
	switch {
	case !au.Enabled:
		log.Info("release checks are off (auto_update.enabled is false)")
		return nil
	case au.CheckURL == "":
		log.Info("release checks are off (auto_update.check_url is empty)")
		return nil
	}
	gauge := NewGauge()
	if err := metrics.Registry.Register(gauge); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
		gauge = are.ExistingCollector.(*prometheus.GaugeVec) // a second manager in one process (tests)
	}
	o := Options{
		Config:    au,
		Token:     cfg.ReleaseToken.Reveal(),
		Current:   version.Version,
		Settings:  st,
		Recorder:  mgr.GetEventRecorder("mss-login-releasecheck"),
		Regarding: NamespaceRef(namespace),
		Gauge:     gauge,
		Log:       log,
	}
	if a, ok := st.(interface {
		Audit(context.Context, store.AuditEvent) error
	}); ok {
		o.Audit = func(ctx context.Context, latest, detail string) {
			_ = a.Audit(ctx, store.AuditEvent{Actor: "operator", Action: "update.available", Target: latest, Detail: detail})
		}
	}
	for _, f := range tune {
		f(&o)
	}
	return mgr.Add(New(o))
}

// NamespaceRef refers to the manager's namespace object. The reference also carries the
// namespace as its own, so the Event is stored there (the manager's RBAC may create Events in
// it) and not in "default", where Events about cluster-scoped objects otherwise go. No read of
// the Namespace is needed, so the manager needs no permission on namespaces.
func NamespaceRef(namespace string) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: namespace, Namespace: namespace}
}
