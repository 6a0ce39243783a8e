package authserver

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the auth server's Prometheus series, on their own registry and listener.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec   // by class and status code
	auth     *prometheus.CounterVec   // login and authorization outcomes
	bans     prometheus.Counter       // bans created by this process
	sockets  prometheus.Gauge         // open WebSockets
	upstream *prometheus.HistogramVec // upstream latency by class
	hashes   prometheus.Counter       // password hashes computed (storm bound)

	counters sync.Map // requestKey → prometheus.Counter: no label hashing per request
}

type requestKey struct {
	class string
	code  int
}

// request counts one request of class with status code.
func (m *metrics) request(class string, code int) {
	k := requestKey{class, code}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.requests.WithLabelValues(class, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mss_login", Name: "requests_total",
			Help: "Requests handled, by route class and status code."}, []string{"class", "code"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mss_login", Name: "auth_results_total",
			Help: "Authentication and authorization outcomes."}, []string{"result"}),
		bans: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mss_login", Name: "bans_created_total",
			Help: "IP bans created after too many failed attempts."}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mss_login", Name: "websockets_open",
			Help: "WebSocket connections open through the proxy."}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "mss_login", Name: "upstream_duration_seconds",
			Help: "Time to the upstream's response headers.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14)},
			[]string{"class"}),
		hashes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mss_login", Name: "password_hashes_total",
			Help: "Password hashes computed."}),
	}
	m.registry.MustRegister(m.requests, m.auth, m.bans, m.sockets, m.upstream, m.hashes,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves the Prometheus metrics (on its own listener).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
}
