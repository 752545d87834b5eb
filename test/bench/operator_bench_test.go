// Package bench measures teleop on the local control plane: the binary we
// ship against a floor (what plain client-go achieves for the same
// Deployments with the same budget), and against Kopf on the same burst.
package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

const (
	// envApps overrides how many apps the benchmarks create (1000).
	envApps = "TELEOP_BENCH_APPS"
	// envPairs overrides how many floor/teleop pairs BenchmarkOperator runs (3).
	envPairs = "TELEOP_BENCH_PAIRS"
	// envProfiles names a directory for teleop's CPU and heap profiles.
	envProfiles = "TELEOP_BENCH_PROFILES"

	initialReplicas int32 = 1
	scaledReplicas  int32 = 2
	restartReplicas int32 = 3
	image                 = "nginx:1.27"
	phaseTimeout          = 30 * time.Minute
	// notifyChats are the private chats teleop tells about every app.
	notifyChats    = "1001,1002"
	statusWrites   = "TeleApp " + benchkit.WriteStatus
	metadataWrites = "TeleApp " + benchkit.WriteMetadata
	// podsPerNode is what the benchmarks put on a fake node at most.
	podsPerNode = 4000
)

// side is what one contender measured in one run: per phase, when the last
// request was answered (sent), when every Deployment had the wanted
// replicas (right), when every app was ready, and the writes the API server
// took.
type side struct {
	create, scale phaseResult
}

type phaseResult struct {
	sent, right, ready time.Duration
	writes             map[string]int
}

// teleopCost is what the teleop process used in one run, and its restart.
type teleopCost struct {
	peak    benchkit.Memory // at the end of the scale phase
	cpu     time.Duration   // over the create and scale phases
	restart restartResult
}

// BenchmarkOperator runs once (use -benchtime=1x): TELEOP_BENCH_PAIRS pairs
// of the floor and teleop, interleaved (floor, teleop, floor, teleop, ...),
// each in a fresh namespace after the previous one was deleted, on one
// private control plane. It reports the median ratio of each phase and
// the spread.
func BenchmarkOperator(b *testing.B) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		b.Skip("SKIPPED: the operator benchmark needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	n, pairs := positiveEnv(b, envApps, 1000), positiveEnv(b, envPairs, 3)
	c := startCluster(b, n)
	budget, err := benchkit.TeleopBudget(operator.Options{})
	if err != nil {
		b.Fatal(err)
	}
	binary := benchkit.BuildTeleop(b)
	var floors, teleops []side
	var costs []teleopCost
	previous := ""
	for i := range pairs {
		deleteNamespaces(b, c, previous)
		previous = fmt.Sprintf("floor-%d", i)
		floors = append(floors, runFloor(b, c, budget, previous, n))
		deleteNamespaces(b, c, previous)
		previous = fmt.Sprintf("teleop-%d", i)
		t, cost := runTeleop(b, c, budget, binary, previous, n)
		teleops, costs = append(teleops, t), append(costs, cost)
		deleteNamespaces(b, c, previous, previous+"-system")
		previous = ""
	}
	report(b, n, budget, floors, teleops, costs)
}

func positiveEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive number", name, s)
	}
	return n
}

// startCluster starts a private control plane with fake nodes for 2n pods
// and teleop's CRDs.
func startCluster(b *testing.B, n int) *cluster.Cluster {
	ctx := context.Background()
	c, err := cluster.Start(ctx, cluster.Options{Nodes: max(2, 2*n/podsPerNode+1), Profiling: os.Getenv(envProfiles) != ""})
	if err != nil {
		b.Fatalf("local control plane: %v", err)
	}
	b.Cleanup(c.Stop)
	if err := cluster.InstallCRDs(ctx, c.RESTConfig(), filepath.Join(cluster.RepoRoot(), "deploy", "crds")); err != nil {
		b.Fatalf("install CRDs: %v", err)
	}
	return c
}

// runFloor creates the Deployments teleop would create, directly, with
// teleop's writers and client budget, and scales them, waiting each time
// until all are available.
func runFloor(b *testing.B, c *cluster.Cluster, budget benchkit.Budget, namespace string, n int) side {
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(budget.Apply(c.RESTConfig()))
	createNamespace(b, kube, namespace)
	w := watch(b, c, namespace)
	defer w.writes.Stop()
	profiles := newAPIServerProfiler(b, namespace, c)
	defer profiles.wait()

	var s side
	profiles.cpu(b, "create")
	s.create = w.phase(b, n, func(i int) error {
		_, err := kube.AppsV1().Deployments(namespace).Create(ctx, floorDeployment(namespace, appName(i)), metav1.CreateOptions{})
		return err
	}, w.deploymentsWith(b, n, initialReplicas), w.deploymentsAvailable(b, n, initialReplicas))
	profiles.cpu(b, "scale")
	s.scale = w.phase(b, n, func(i int) error {
		_, err := kube.AppsV1().Deployments(namespace).Patch(ctx, appName(i), types.MergePatchType, replicasPatch(scaledReplicas), metav1.PatchOptions{})
		return err
	}, w.deploymentsWith(b, n, scaledReplicas), w.deploymentsAvailable(b, n, scaledReplicas))
	return s
}

// runTeleop runs `teleop run` as shipped and has the same writers create
// and scale TeleApps, waiting each time until every status says Ready.
// Then it restarts teleop with 1% of the apps changed while it was down.
func runTeleop(b *testing.B, c *cluster.Cluster, budget benchkit.Budget, binary, namespace string, n int) (side, teleopCost) {
	ctx := context.Background()
	t := newTeleopUnderTest(b, c, budget, binary, namespace)
	defer t.w.writes.Stop()
	proc := t.start(b)
	cpuBefore := proc.CPU(b)

	var s side
	t.profiles.cpu(b, "create")
	s.create = t.createApps(b, n, initialReplicas)
	t.profiles.cpu(b, "scale")
	s.scale = t.w.phase(b, n, func(i int) error {
		_, err := t.tele.TeleopV1alpha1().TeleApps(namespace).Patch(ctx, appName(i), types.MergePatchType, replicasPatch(scaledReplicas), metav1.PatchOptions{})
		return err
	}, t.w.deploymentsWith(b, n, scaledReplicas), t.w.teleAppsReady(b, n, func(string) int32 { return scaledReplicas }))
	t.profiles.heap(b, "run")
	cost := teleopCost{peak: proc.Memory(b), cpu: proc.CPU(b) - cpuBefore}
	t.profiles.wait()
	proc.Stop(b)

	cost.restart = t.restart(b, n, "restart", scaledReplicas, restartReplicas)
	return s, cost
}

func appName(i int) string { return fmt.Sprintf("app-%05d", i) }

func replicasPatch(replicas int32) []byte {
	return fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
}

func teleApp(name string, replicas int32) *v1alpha1.TeleApp {
	return &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.TeleAppSpec{Image: image, Replicas: ptr.To(replicas)},
	}
}

// floorDeployment has the shape of teleop's Deployments, with labels of its
// own so that teleop's caches never hold the floor's objects.
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
