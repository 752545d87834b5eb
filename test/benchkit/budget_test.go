package benchkit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"

	"github.com/teleop/teleop/operator"
)

func TestTeleopBudgetSumsEveryClient(t *testing.T) {
	tests := map[string]struct {
		opts           operator.Options
		qpsPerClient   float32
		burstPerClient int
	}{
		"defaults":    {opts: operator.Options{}, qpsPerClient: operator.DefaultQPS, burstPerClient: operator.DefaultBurst},
		"set by hand": {opts: operator.Options{QPS: 7, Burst: 9}, qpsPerClient: 7, burstPerClient: 9},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := TeleopBudget(tt.opts)
			require.NoError(t, err)
			// At least the Kubernetes and the TeleApp clientsets are built
			// apart, each with a limiter of its own.
			assert.GreaterOrEqual(t, b.Clients, 2)
			assert.Equal(t, float32(b.Clients)*tt.qpsPerClient, b.QPS)
			assert.Equal(t, b.Clients*tt.burstPerClient, b.Burst)
		})
	}
}

func TestBudgetApplyLeavesTheConfigAlone(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443", QPS: 5, Burst: 10}
	got := Budget{Clients: 3, QPS: 300, Burst: 600}.Apply(cfg)
	assert.Equal(t, float32(300), got.QPS)
	assert.Equal(t, 600, got.Burst)
	assert.Equal(t, float32(5), cfg.QPS, "the original is not changed")
}
