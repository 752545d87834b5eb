package operator

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestMetricsCountReconcilesByResult(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "teleapps"}, "web", errors.New("stale"))
	tests := []struct {
		name string
		errs []error
		want map[string]float64
	}{
		{name: "successes", errs: []error{nil, nil}, want: map[string]float64{resultSuccess: 2}},
		{name: "a conflict is its own result", errs: []error{conflict, nil}, want: map[string]float64{resultConflict: 1, resultSuccess: 1}},
		{name: "other errors", errs: []error{errors.New("boom"), conflict}, want: map[string]float64{resultError: 1, resultConflict: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			for _, err := range tt.errs {
				m.observe(err, time.Millisecond)
			}
			for result, want := range tt.want {
				assert.Equal(t, want, testutil.ToFloat64(m.reconciles.WithLabelValues(result)), result)
			}
			assert.Equal(t, float64(len(tt.errs)), sumCounts(m), "every reconcile counted once")
		})
	}
	var none *Metrics
	none.observe(nil, time.Second) // a nil Metrics counts nothing and does not panic
}

func sumCounts(m *Metrics) float64 {
	var sum float64
	for _, result := range []string{resultSuccess, resultConflict, resultError} {
		sum += testutil.ToFloat64(m.reconciles.WithLabelValues(result))
	}
	return sum
}
