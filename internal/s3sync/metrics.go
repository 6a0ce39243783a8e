package s3sync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one Syncer, in a registry of its own (the sidecar serves it on /metrics).
type metrics struct {
	reg        *prometheus.Registry
	objects    prometheus.Gauge
	bytesTotal prometheus.Gauge
	downloads  prometheus.Counter
	bytes      prometheus.Counter
	deletes    prometheus.Counter
	uploads    prometheus.Counter
	errors     prometheus.Counter
	duration   prometheus.Histogram
	lastOK     prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		objects:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "mss_login_s3sync_objects", Help: "Files in the synced directory that stand for an object, after the last sync."}),
		bytesTotal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mss_login_s3sync_object_bytes", Help: "Bytes of those files."}),
		downloads:  prometheus.NewCounter(prometheus.CounterOpts{Name: "mss_login_s3sync_downloaded_objects_total", Help: "Objects downloaded."}),
		bytes:      prometheus.NewCounter(prometheus.CounterOpts{Name: "mss_login_s3sync_downloaded_bytes_total", Help: "Bytes downloaded."}),
		deletes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mss_login_s3sync_deleted_files_total", Help: "Local files removed because their object is gone."}),
		uploads:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mss_login_s3sync_uploaded_files_total", Help: "Output files uploaded."}),
		errors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "mss_login_s3sync_errors_total", Help: "Syncs that failed (the last good copy stays)."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mss_login_s3sync_duration_seconds", Help: "Duration of a sync.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mss_login_s3sync_last_success_timestamp_seconds", Help: "When the last complete sync ended."}),
	}
	m.reg.MustRegister(m.objects, m.bytesTotal, m.downloads, m.bytes, m.deletes, m.uploads, m.errors, m.duration, m.lastOK)
	return m
}

// Register adds more collectors (the workflow sync's) to the registry served on /metrics.
func (s *Syncer) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.metrics.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// wfMetrics count what the workflow sync does, by action.
type wfMetrics struct {
	files  *prometheus.CounterVec
	errors prometheus.Counter
	lastOK prometheus.Gauge
}

func newWFMetrics() *wfMetrics {
	return &wfMetrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mss_login_s3sync_workflow_files_total",
			Help: "Workflow files synced, by action: uploaded, downloaded, deleted_local, deleted_remote, deferred (a local save during the download won)."}, []string{"action"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "mss_login_s3sync_workflow_errors_total", Help: "Workflow syncs with a failed user or file."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mss_login_s3sync_workflow_last_success_timestamp_seconds", Help: "When the last workflow sync without errors ended."}),
	}
}

func (m *wfMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.files, m.errors, m.lastOK}
}

func (m *wfMetrics) observe(r WorkflowResult, err error, now time.Time) {
	m.files.WithLabelValues("uploaded").Add(float64(r.Uploaded))
	m.files.WithLabelValues("downloaded").Add(float64(r.Downloaded))
	m.files.WithLabelValues("deleted_local").Add(float64(r.Deleted))
	m.files.WithLabelValues("deleted_remote").Add(float64(r.DeletedRemote))
	m.files.WithLabelValues("deferred").Add(float64(r.Deferred))
	if err != nil {
		m.errors.Inc()
		return
	}
	m.lastOK.Set(float64(now.Unix()))
}
