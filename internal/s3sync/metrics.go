package s3sync

import "github.com/prometheus/client_golang/prometheus"

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
