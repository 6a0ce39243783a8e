package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are the mss-login metrics of the manager, served with controller-runtime's on the
// metrics endpoint.
type Metrics struct {
	applied          *prometheus.CounterVec
	errors           *prometheus.CounterVec
	drift            *prometheus.CounterVec
	lockoutsMirrored prometheus.Gauge
	lockoutsOverflow prometheus.Gauge
	lockoutsLifted   prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: controller-runtime's
// registry). Registering twice in one process (tests) reuses the first registration.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = metrics.Registry
	}
	m := &Metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mss_login_operator_applied_total",
			Help: "Resources written to the users database (result=applied) or released on deletion (result=released).",
		}, []string{"kind", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mss_login_operator_errors_total",
			Help: "Failed applies and releases, retried with backoff.",
		}, []string{"kind"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mss_login_operator_drift_corrected_total",
			Help: "Rows changed behind the operator's back and put back.",
		}, []string{"kind"}),
		lockoutsMirrored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mss_login_lockouts_mirrored",
			Help: "Active bans mirrored as Lockout objects.",
		}),
		lockoutsOverflow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mss_login_lockouts_unmirrored",
			Help: "Active bans not mirrored because lockout_mirror.max_objects was reached.",
		}),
		lockoutsLifted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mss_login_lockouts_lifted_total",
			Help: "Bans lifted because their Lockout object was deleted.",
		}),
	}
	m.applied = register(reg, m.applied)
	m.errors = register(reg, m.errors)
	m.drift = register(reg, m.drift)
	m.lockoutsMirrored = register(reg, m.lockoutsMirrored)
	m.lockoutsOverflow = register(reg, m.lockoutsOverflow)
	m.lockoutsLifted = register(reg, m.lockoutsLifted)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
