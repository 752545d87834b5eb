package benchkit

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/teleop/teleop/operator"
)

// Budget is the client-side request budget of a process: the sum over its
// API clients' rate limiters.
type Budget struct {
	Clients int     // distinct rate limiters
	QPS     float32 // their QPS, summed
	Burst   int     // their bursts, summed
}

// TeleopBudget is the budget `teleop run` gives itself with opts (the zero
// value: its defaults). Every Kubernetes client of cmd/teleop comes from
// operator.NewClients, so its limiters are counted, not assumed: each
// clientset shares one limiter among its API groups, and clientsets built
// apart have one each.
func TeleopBudget(opts operator.Options) (Budget, error) {
	clients, err := operator.NewClients(&rest.Config{Host: "https://127.0.0.1:1"}, opts)
	if err != nil {
		return Budget{}, fmt.Errorf("build teleop's clients: %w", err)
	}
	limiters := []flowcontrol.RateLimiter{
		clients.Kube.CoreV1().RESTClient().GetRateLimiter(),
		clients.Kube.AppsV1().RESTClient().GetRateLimiter(),
		clients.Tele.TeleopV1alpha1().RESTClient().GetRateLimiter(),
		clients.Events.CoreV1().RESTClient().GetRateLimiter(),
	}
	seen := map[flowcontrol.RateLimiter]bool{}
	var b Budget
	for _, l := range limiters {
		if l == nil || seen[l] {
			continue
		}
		seen[l] = true
		b.Clients++
		b.QPS += l.QPS()
	}
	burst := opts.Burst
	if burst <= 0 {
		burst = operator.DefaultBurst
	}
	b.Burst = b.Clients * burst // client-go's limiters do not tell their burst
	return b, nil
}

// Apply gives cfg the budget as one client: at least as much as the
// clients it sums could use together.
func (b Budget) Apply(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = b.QPS, b.Burst
	return cfg
}
