// Package bench measures teleop on the local control plane against a floor:
// what plain client-go achieves for the same Deployments.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

const (
	// envOperatorKubeconfig makes the test binary run only the operator
	// against that kubeconfig: the benchmark re-executes itself this way so
	// the operator's resident memory is a process's own.
	envOperatorKubeconfig = "TELEOP_BENCH_OPERATOR_KUBECONFIG"
	// envHeapProfile names a file for the operator's heap profile.
	envHeapProfile = "TELEOP_BENCH_HEAP_PROFILE"
	// envApps overrides how many apps the benchmark creates (1000).
	envApps = "TELEOP_BENCH_APPS"

	initialReplicas int32 = 1
	scaledReplicas  int32 = 2
	image                 = "nginx:1.27"
	phaseTimeout          = 10 * time.Minute
)

func TestMain(m *testing.M) {
	if kubeconfig := os.Getenv(envOperatorKubeconfig); kubeconfig != "" {
		os.Exit(runOperator(kubeconfig))
	}
	os.Exit(m.Run())
}

// runOperator is the child process: teleop's operator with its defaults,
// watching all namespaces, until SIGTERM; it prints the API writes it made
// as it ends.
func runOperator(kubeconfig string) int {
	counter := &requestCounter{counts: map[string]int{}}
	defer counter.print()
	if err := benchkit.RunOperator(kubeconfig, "", counter.wrap); err != nil {
		slog.Error("operator child", "err", err)
		return 1
	}
	if path := os.Getenv(envHeapProfile); path != "" {
		if err := writeHeapProfile(path); err != nil {
			slog.Error("heap profile", "err", err)
			return 1
		}
	}
	return 0
}

// writeHeapProfile writes the live heap as the operator ends, for
// `go tool pprof -sample_index=inuse_space`.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}

// timings of one contender: from the start of the create burst until every
// Deployment exists with the right replicas, until every app is ready, and
// from the start of the scale burst until every app is ready again.
type timings struct {
	exist, ready, scaled time.Duration
}

// BenchmarkOperator runs once per iteration (use -benchtime=1x): the floor,
// then teleop, on one fresh control plane.
func BenchmarkOperator(b *testing.B) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		b.Skip("SKIPPED: the operator benchmark needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	n := appCount(b)
	ctx := context.Background()
	c, err := cluster.Start(ctx, cluster.Options{})
	if err != nil {
		b.Fatalf("local control plane: %v", err)
	}
	b.Cleanup(c.Stop)
	if err := cluster.InstallCRDs(ctx, c.RESTConfig(), filepath.Join(cluster.RepoRoot(), "deploy", "crds")); err != nil {
		b.Fatalf("install CRDs: %v", err)
	}
	// The contenders' writes share one budget: the operator's default
	// workers, QPS and burst.
	budget := c.RESTConfig()
	budget.QPS, budget.Burst = operator.DefaultQPS, operator.DefaultBurst

	for i := range b.N {
		floor := runFloor(b, c, budget, fmt.Sprintf("floor-%d", i), n)
		teleop, cost := runTeleop(b, c, budget, fmt.Sprintf("teleop-%d", i), n)
		report(b, n, floor, teleop, cost)
	}
}

func appCount(b *testing.B) int {
	if s := os.Getenv(envApps); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q is not a positive number", envApps, s)
		}
		return n
	}
	return 1000
}

// runFloor creates the Deployments teleop would create, directly, and scales
// them, waiting each time until all are available.
func runFloor(b *testing.B, c *cluster.Cluster, budget *rest.Config, namespace string, n int) timings {
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(budget)
	createNamespace(b, kube, namespace)
	deployments := watchDeployments(b, c, namespace)
	available := func(replicas int32) func(*appsv1.Deployment) bool {
		return func(d *appsv1.Deployment) bool {
			s := d.Status
			return ptr.Deref(d.Spec.Replicas, -1) == replicas && s.ObservedGeneration >= d.Generation &&
				s.Replicas == replicas && s.UpdatedReplicas == replicas && s.AvailableReplicas == replicas
		}
	}

	var t timings
	ready := benchkit.Count(b, deployments, n, available(initialReplicas))
	start := time.Now()
	benchkit.Burst(b, n, func(i int) error {
		_, err := kube.AppsV1().Deployments(namespace).Create(ctx, floorDeployment(namespace, appName(i)), metav1.CreateOptions{})
		return err
	})
	t.exist = time.Since(start)
	t.ready = ready.Wait(b, "floor Deployments available", start, phaseTimeout)

	scaled := benchkit.Count(b, deployments, n, available(scaledReplicas))
	start = time.Now()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, scaledReplicas))
	benchkit.Burst(b, n, func(i int) error {
		_, err := kube.AppsV1().Deployments(namespace).Patch(ctx, appName(i), types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	t.scaled = scaled.Wait(b, "floor Deployments scaled", start, phaseTimeout)
	return t
}

// runTeleop creates TeleApps for the operator, running as its own process,
// and scales them through spec.replicas, waiting each time until every
// status says Ready. It returns the timings and what the operator used.
func runTeleop(b *testing.B, c *cluster.Cluster, budget *rest.Config, namespace string, n int) (timings, operatorCost) {
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(budget)
	tele := versioned.NewForConfigOrDie(budget)
	createNamespace(b, kube, namespace)
	proc := startOperator(b, c)
	deployments := watchDeployments(b, c, namespace)
	apps := watchTeleApps(b, c, namespace)
	ready := func(replicas int32) func(*v1alpha1.TeleApp) bool {
		return func(a *v1alpha1.TeleApp) bool {
			s := a.Status
			return s.ObservedGeneration == a.Generation && s.Phase == v1alpha1.PhaseReady && s.ReadyReplicas == replicas
		}
	}

	var t timings
	exist := benchkit.Count(b, deployments, n, func(d *appsv1.Deployment) bool { return ptr.Deref(d.Spec.Replicas, -1) == initialReplicas })
	allReady := benchkit.Count(b, apps, n, ready(initialReplicas))
	start := time.Now()
	benchkit.Burst(b, n, func(i int) error {
		_, err := tele.TeleopV1alpha1().TeleApps(namespace).Create(ctx, &v1alpha1.TeleApp{
			ObjectMeta: metav1.ObjectMeta{Name: appName(i)},
			Spec:       v1alpha1.TeleAppSpec{Image: image, Replicas: ptr.To(initialReplicas)},
		}, metav1.CreateOptions{})
		return err
	})
	t.exist = exist.Wait(b, "teleop Deployments created", start, phaseTimeout)
	t.ready = allReady.Wait(b, "TeleApps Ready", start, phaseTimeout)

	scaled := benchkit.Count(b, apps, n, ready(scaledReplicas))
	start = time.Now()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, scaledReplicas))
	benchkit.Burst(b, n, func(i int) error {
		_, err := tele.TeleopV1alpha1().TeleApps(namespace).Patch(ctx, appName(i), types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	t.scaled = scaled.Wait(b, "TeleApps scaled and Ready", start, phaseTimeout)
	return t, stopOperator(b, proc)
}

func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

// floorDeployment has the shape of teleop's Deployments, with labels of its
// own so that teleop's pod cache never holds the floor's pods.
func floorDeployment(namespace, name string) *appsv1.Deployment {
	labels := map[string]string{v1alpha1.LabelName: name, v1alpha1.LabelManagedBy: "bench-floor"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(initialReplicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelName: name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func createNamespace(b *testing.B, kube kubernetes.Interface, name string) {
	_, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatalf("create namespace %s: %v", name, err)
	}
}

// operatorCost is what the operator process used over the run.
type operatorCost struct {
	benchkit.Memory
	writes     int    // API requests other than reads
	writesLine string // their breakdown
}

// startOperator runs the operator as a child process, so that its resident
// memory is a process's own, and waits until its caches are synced.
func startOperator(b *testing.B, c *cluster.Cluster) *benchkit.Operator {
	p := benchkit.StartOperator(b, envOperatorKubeconfig+"="+c.Kubeconfig)
	p.WaitLog(b, benchkit.LogCachesSynced, time.Minute)
	return p
}

// stopOperator reads the operator's memory, stops it with SIGTERM and reads
// the requests it made from its log.
func stopOperator(b *testing.B, p *benchkit.Operator) operatorCost {
	mem := p.Memory(b)
	p.Stop(b)
	data, err := os.ReadFile(p.LogPath())
	if err != nil {
		b.Fatalf("operator log: %v", err)
	}
	writes, line, err := parseWrites(string(data))
	if err != nil {
		b.Fatalf("operator log %s: %v", p.LogPath(), err)
	}
	return operatorCost{Memory: mem, writes: writes, writesLine: line}
}

func report(b *testing.B, n int, floor, teleop timings, cost operatorCost) {
	const mib = 1 << 20
	ratio := func(t, f time.Duration) float64 { return t.Seconds() / f.Seconds() }
	b.ReportMetric(floor.ready.Seconds(), "floor-ready-s")
	b.ReportMetric(teleop.ready.Seconds(), "teleop-ready-s")
	b.ReportMetric(ratio(teleop.ready, floor.ready), "ready-ratio")
	b.ReportMetric(ratio(teleop.scaled, floor.scaled), "scale-ratio")
	b.ReportMetric(float64(cost.PeakRSS)/mib, "peak-RSS-MiB")
	b.ReportMetric(float64(cost.writes)/float64(n), "writes/app")
	b.Logf("%d apps                        floor      teleop   ratio", n)
	b.Logf("all Deployments exist       %8.2fs  %8.2fs   %.2f", floor.exist.Seconds(), teleop.exist.Seconds(), ratio(teleop.exist, floor.exist))
	b.Logf("all ready                   %8.2fs  %8.2fs   %.2f", floor.ready.Seconds(), teleop.ready.Seconds(), ratio(teleop.ready, floor.ready))
	b.Logf("scaled %d→%d, all ready      %8.2fs  %8.2fs   %.2f", initialReplicas, scaledReplicas, floor.scaled.Seconds(), teleop.scaled.Seconds(), ratio(teleop.scaled, floor.scaled))
	b.Logf("teleop operator process: peak RSS %.1f MiB, RSS at end %.1f MiB", float64(cost.PeakRSS)/mib, float64(cost.RSS)/mib)
	b.Logf("teleop %s", cost.writesLine)
}
