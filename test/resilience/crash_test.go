package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

// TestOperatorKilledMidBurstReconcilesEverythingOnce kills the operator with
// SIGKILL while a burst of TeleApp creates is being reconciled, lets the
// burst finish without it, and restarts it: every app ends with exactly one
// Deployment of the right replicas, one ReplicaSet, and a Ready status.
func TestOperatorKilledMidBurstReconcilesEverythingOnce(t *testing.T) {
	const apps = 500
	c := cluster.Shared(t)
	w := newWorld(t, c)
	want := desired{}
	for i := range apps {
		want[appName(i)] = 1 + int32(i%2)
	}

	first := startOperator(t, c.Kubeconfig, w.ns)
	first.WaitLog(t, benchkit.LogCachesSynced, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	created := make(chan error, 1)
	go func() { created <- w.createApps(ctx, want, 8) }()

	// Kill it once it has reconciled part of the burst: creates are still
	// arriving, Deployments and status writes are in flight.
	require.Eventually(t, func() bool {
		list, err := w.kube.AppsV1().Deployments(w.ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) >= apps/5
	}, 2*time.Minute, 20*time.Millisecond, "the operator reconciles the first part of the burst")
	first.Kill()
	killedAt := time.Now()
	require.NoError(t, <-created, "the burst completes without the operator")
	deploymentsAtKill, err := w.kube.AppsV1().Deployments(w.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Less(t, len(deploymentsAtKill.Items), apps, "the kill left work undone")
	t.Logf("killed with %d of %d Deployments created, burst finished %v later", len(deploymentsAtKill.Items), apps, time.Since(killedAt))

	second := startOperator(t, c.Kubeconfig, w.ns)
	synced := second.WaitLog(t, benchkit.LogCachesSynced, time.Minute)
	w.waitConverged(want, 4*time.Minute)
	t.Logf("restarted operator: caches synced after %v, all %d apps Ready %v after the restart", synced, apps, time.Since(second.Started()))

	replicaSets, err := w.kube.AppsV1().ReplicaSets(w.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	perDeployment := map[string]int{}
	for _, rs := range replicaSets.Items {
		perDeployment[rs.Labels[v1alpha1.LabelName]]++
	}
	for name := range want {
		assert.Equal(t, 1, perDeployment[name], "ReplicaSets of %s: one rollout, never redone", name)
	}
	pods, err := w.kube.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}.String()})
	require.NoError(t, err)
	assert.Len(t, pods.Items, apps*3/2, "pods: exactly the replicas asked for")
	second.Stop(t)
}
