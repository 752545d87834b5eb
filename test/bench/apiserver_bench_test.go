package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

// envRounds overrides how many interleaved rounds BenchmarkAPIServerPatch runs (5).
const envRounds = "TELEOP_BENCH_ROUNDS"

// patchKind is one kind of merge patch whose cost to the API server is
// measured: n of them, one per object.
type patchKind struct {
	name  string
	patch func(ctx context.Context, i, round int) error
}

// BenchmarkAPIServerPatch measures what the API server spends, in CPU time
// of its own process, on a merge patch of a TeleApp against one of a
// Deployment, and on the status update teleop makes when a scale is done,
// with nothing else writing: TELEOP_BENCH_APPS of each (the TeleApps with
// the status teleop gives a ready app, the Deployments at 0 replicas so
// that no pod is made), written by the benchmarks' writers in interleaved
// rounds. The API server's idle CPU, measured before, is taken off each
// round. Run once (-benchtime=1x).
func BenchmarkAPIServerPatch(b *testing.B) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		b.Skip("SKIPPED: the API server benchmark needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	n, rounds := positiveEnv(b, envApps, 1000), positiveEnv(b, envRounds, 5)
	c := startCluster(b, 0)
	pid, err := c.APIServerPID()
	if err != nil {
		b.Fatal(err)
	}
	budget, err := benchkit.TeleopBudget(operator.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := budget.Apply(c.RESTConfig())
	kube, tele := kubernetes.NewForConfigOrDie(cfg), versioned.NewForConfigOrDie(cfg)
	const namespace = "patch-cost"
	createNamespace(b, kube, namespace)
	ctx := context.Background()
	// latest holds each TeleApp as its last write left it: the status
	// update names the resourceVersion it replaces, as teleop's does.
	latest := make([]*v1alpha1.TeleApp, n)
	benchkit.Burst(b, n, func(i int) error {
		app, err := tele.TeleopV1alpha1().TeleApps(namespace).Create(ctx, teleApp(appName(i), initialReplicas), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		// A TeleApp teleop runs has its status, which the API server
		// decodes, validates and tracks the fields of in every later write.
		app.Status = readyStatus(app, initialReplicas)
		if latest[i], err = tele.TeleopV1alpha1().TeleApps(namespace).UpdateStatus(ctx, app, metav1.UpdateOptions{}); err != nil {
			return err
		}
		d := floorDeployment(namespace, appName(i))
		d.Spec.Replicas = ptr.To[int32](0)
		_, err = kube.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
	annotation := func(round int) []byte {
		return fmt.Appendf(nil, `{"metadata":{"annotations":{"bench.teleop.io/round":"%d"}}}`, round)
	}
	patchTeleApp := func(ctx context.Context, i int, patch []byte) (err error) {
		latest[i], err = tele.TeleopV1alpha1().TeleApps(namespace).Patch(ctx, appName(i), types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	kinds := []patchKind{
		{"TeleApp spec.replicas", func(ctx context.Context, i, round int) error {
			return patchTeleApp(ctx, i, replicasPatch(int32(round+2)))
		}},
		{"TeleApp annotation", func(ctx context.Context, i, round int) error {
			return patchTeleApp(ctx, i, annotation(round))
		}},
		{"TeleApp status update", func(ctx context.Context, i, round int) (err error) {
			app := latest[i].DeepCopy()
			app.Status = readyStatus(app, int32(round+2))
			latest[i], err = tele.TeleopV1alpha1().TeleApps(namespace).UpdateStatus(ctx, app, metav1.UpdateOptions{})
			return err
		}},
		{"Deployment annotation", func(ctx context.Context, i, round int) error {
			_, err := kube.AppsV1().Deployments(namespace).Patch(ctx, appName(i), types.MergePatchType, annotation(round), metav1.PatchOptions{})
			return err
		}},
	}
	idle := idleCPURate(b, pid, 10*time.Second)
	b.Logf("%d objects of each kind, %d rounds, %d writers; the API server idles at %.1f%% of a core", n, rounds, operator.DefaultWorkers, idle*100)
	perPatch := make([][]float64, len(kinds))
	for round := range rounds {
		for k, kind := range kinds {
			start, before := time.Now(), readCPU(b, pid)
			benchkit.Burst(b, n, func(i int) error { return kind.patch(ctx, i, round) })
			wall := time.Since(start)
			time.Sleep(2 * time.Second) // the watchers' share of the work
			busy := (readCPU(b, pid) - before).Seconds() - idle*time.Since(start).Seconds()
			perPatch[k] = append(perPatch[k], busy/float64(n)*1e6)
			b.Logf("round %d %-22s %5.2fs wall, %5.0f µs of API server CPU per patch", round, kind.name, wall.Seconds(), perPatch[k][round])
		}
	}
	medians := make([]float64, len(kinds))
	for k, kind := range kinds {
		s := spreadOf(perPatch[k])
		medians[k] = s.median
		b.Logf("%-22s median %.0f µs per patch (%.0f–%.0f)", kind.name, s.median, s.low, s.high)
	}
	// The first kind is what a user's scale costs, the last a Deployment's patch.
	b.ReportMetric(medians[0]/medians[len(kinds)-1], "teleapp/deployment")
}

// readyStatus has the shape of the status teleop writes when a rollout to
// replicas is done: the counts, the phase, its three conditions and the
// first revision of the history.
func readyStatus(app *v1alpha1.TeleApp, replicas int32) v1alpha1.TeleAppStatus {
	status := v1alpha1.TeleAppStatus{
		Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas, UpdatedReplicas: replicas,
		Selector:           v1alpha1.LabelName + "=" + app.Name,
		Phase:              v1alpha1.PhaseReady,
		Message:            fmt.Sprintf("%d/%d replicas ready", replicas, replicas),
		ObservedGeneration: app.Generation,
		History:            []v1alpha1.Revision{{Revision: 1, Image: app.Spec.Image, ChangedAt: &app.CreationTimestamp, ChangedBy: "bench"}},
	}
	for _, c := range []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready"},
		{Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: "Complete"},
		{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionFalse, Reason: "AsExpected"},
	} {
		c.Message, c.ObservedGeneration = status.Message, app.Generation
		meta.SetStatusCondition(&status.Conditions, c)
	}
	return status
}

func readCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	cpu, err := benchkit.ReadCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}

// idleCPURate is the share of a core process pid uses over d with nothing written.
func idleCPURate(b *testing.B, pid int, d time.Duration) float64 {
	b.Helper()
	before := readCPU(b, pid)
	time.Sleep(d)
	return (readCPU(b, pid) - before).Seconds() / d.Seconds()
}
