package operator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Reconcile results, the values of the result label.
const (
	resultSuccess  = "success"
	resultConflict = "conflict"
	resultError    = "error"
)

// Metrics count reconciles by result and time them. A nil *Metrics counts
// nothing, so tests and benchmarks need none.
type Metrics struct {
	reconciles *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

// NewMetrics creates the reconcile metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teleop_reconciles_total", Help: "TeleApp reconciles by result.",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "teleop_reconcile_duration_seconds", Help: "How long one TeleApp reconcile takes, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. 4 s
		}, []string{"result"}),
	}
	reg.MustRegister(m.reconciles, m.duration)
	return m
}

// observe records one reconcile that ended with err after d.
func (m *Metrics) observe(err error, d time.Duration) {
	if m == nil {
		return
	}
	result := resultSuccess
	switch {
	case apierrors.IsConflict(err):
		result = resultConflict
	case err != nil:
		result = resultError
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.duration.WithLabelValues(result).Observe(d.Seconds())
}
