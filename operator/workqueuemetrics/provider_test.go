package workqueuemetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/util/workqueue"
)

func TestQueueActivityIsExported(t *testing.T) {
	reg := prometheus.NewRegistry()
	provider := New(reg)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "teleapps", MetricsProvider: provider})
	defer q.ShutDown()

	q.Add("default/web")
	q.Add("default/api")
	q.AddRateLimited("default/db")

	assert.Equal(t, 2.0, testutil.ToFloat64(provider.depth.WithLabelValues("teleapps")))
	assert.Equal(t, 1.0, testutil.ToFloat64(provider.retries.WithLabelValues("teleapps")))

	item, _ := q.Get()
	q.Done(item)
	assert.Equal(t, 1.0, testutil.ToFloat64(provider.depth.WithLabelValues("teleapps")))

	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP workqueue_adds_total Items added to the workqueue.
# TYPE workqueue_adds_total counter
workqueue_adds_total{name="teleapps"} 2
`), "workqueue_adds_total")
	require.NoError(t, err)
}
