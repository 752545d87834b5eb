package resilience

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

// envScaleApps sets how many TeleApps BenchmarkScale runs with; 1000 when
// unset, 10000 for the figures of docs/benchmarks.md.
const envScaleApps = "TELEOP_SCALE_APPS"

// podsPerNode is what a fake node of test/cluster holds (with room to spare).
const podsPerNode = 4000

// scaleTimeout bounds each wait of BenchmarkScale for a count to be reached.
const scaleTimeout = 30 * time.Minute

// BenchmarkScale measures teleop at a scale (use -benchtime=1x):
//   - throughput: the time until N TeleApps are all Ready, against the floor
//     of plain client-go creating the same N Deployments with the same
//     workers and QPS budget, in the same run;
//   - the operator's resident memory with N TeleApps (its own process);
//   - a restart: 1% of the apps are scaled while the operator is down; the
//     time until caches are synced and every status is right again, and the
//     status writes on the other 99% (expected: none).
func BenchmarkScale(b *testing.B) {
	n := scaleApps(b)
	c := ownCluster(b, cluster.Options{Nodes: 2*n/podsPerNode + 1})
	budget := c.RESTConfig()
	budget.QPS, budget.Burst = operator.DefaultQPS, operator.DefaultBurst
	for i := range b.N {
		floor := runScaleFloor(b, c, budget, fmt.Sprintf("floor-%d", i), n)
		r := runScaleTeleop(b, c, budget, fmt.Sprintf("teleop-%d", i), n)
		r.report(b, n, floor)
	}
}

func scaleApps(b *testing.B) int {
	s := os.Getenv(envScaleApps)
	if s == "" {
		return 1000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 {
		b.Fatalf("%s=%q: want a number of apps, at least 100", envScaleApps, s)
	}
	return n
}

// runScaleFloor creates n Deployments of teleop's shape with plain client-go
// and returns how long until all are available.
func runScaleFloor(b *testing.B, c *cluster.Cluster, budget *rest.Config, namespace string, n int) time.Duration {
	w := namedWorld(b, c, budget, namespace)
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(w.kube, 0, kubeinformers.WithNamespace(namespace))
	informer := factory.Apps().V1().Deployments().Informer()
	available := benchkit.Count(b, informer, n, func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == 1
	})
	benchkit.StartInformers(b, factory, informer)
	start := time.Now()
	benchkit.Burst(b, n, func(i int) error {
		_, err := w.kube.AppsV1().Deployments(namespace).Create(context.Background(), floorDeployment(namespace, appName(i)), metav1.CreateOptions{})
		return err
	})
	return available.Wait(b, "floor Deployments available", start, scaleTimeout)
}

// floorDeployment has the shape of teleop's Deployments, with labels of its
// own so that teleop's caches never hold the floor's objects.
func floorDeployment(namespace, name string) *appsv1.Deployment {
	labels := map[string]string{v1alpha1.LabelName: name, v1alpha1.LabelManagedBy: "scale-floor"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelName: name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// scaleResult is what one teleop run measured.
type scaleResult struct {
	allReady      time.Duration   // create burst start → every TeleApp Ready
	steady        benchkit.Memory // with every TeleApp Ready
	synced        time.Duration   // restart → caches synced
	restartReady  time.Duration   // restart → every status right again
	afterRestart  benchkit.Memory
	changed       int // apps scaled while the operator was down
	storm         int // status writes on the apps not changed, after the restart
	changedWrites int // writes on the changed apps after the restart
}

func runScaleTeleop(b *testing.B, c *cluster.Cluster, budget *rest.Config, namespace string, n int) scaleResult {
	ctx := context.Background()
	w := namedWorld(b, c, budget, namespace)
	factory := teleinformers.NewSharedInformerFactoryWithOptions(w.tele, 0, teleinformers.WithNamespace(namespace))
	informer := factory.Teleop().V1alpha1().TeleApps().Informer()
	readyWith := func(replicas func(name string) int32) func(*v1alpha1.TeleApp) bool {
		return func(a *v1alpha1.TeleApp) bool {
			s := a.Status
			return s.ObservedGeneration == a.Generation && s.Phase == v1alpha1.PhaseReady && s.ReadyReplicas == replicas(a.Name)
		}
	}
	one := func(string) int32 { return 1 }
	allReady := benchkit.Count(b, informer, n, readyWith(one))
	benchkit.StartInformers(b, factory, informer)

	var r scaleResult
	proc := startOperator(b, c.Kubeconfig, "")
	proc.WaitLog(b, benchkit.LogCachesSynced, time.Minute)
	start := time.Now()
	benchkit.Burst(b, n, func(i int) error {
		_, err := w.tele.TeleopV1alpha1().TeleApps(namespace).Create(ctx, teleApp(namespace, appName(i), 1), metav1.CreateOptions{})
		return err
	})
	r.allReady = allReady.Wait(b, "TeleApps Ready", start, scaleTimeout)
	r.steady = proc.Memory(b)
	proc.Stop(b)

	// While the operator is down, 1% of the apps are scaled to 2.
	r.changed = n / 100
	changed := map[string]bool{}
	for i := range r.changed {
		changed[appName(i*100)] = true
	}
	want := func(name string) int32 {
		if changed[name] {
			return 2
		}
		return 1
	}
	restartReady := benchkit.Count(b, informer, n, readyWith(want))
	benchkit.Burst(b, r.changed, func(i int) error {
		_, err := w.tele.TeleopV1alpha1().TeleApps(namespace).Patch(ctx, appName(i*100), types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
		return err
	})
	writes := countWrites(b, w, namespace)

	proc = startOperator(b, c.Kubeconfig, "")
	r.synced = proc.WaitLog(b, benchkit.LogCachesSynced, 2*time.Minute)
	r.restartReady = restartReady.Wait(b, "TeleApps right after the restart", proc.Started(), scaleTimeout)
	time.Sleep(5 * time.Second) // room for a late storm to show
	r.afterRestart = proc.Memory(b)
	for name, count := range writes.stop() {
		if changed[name] {
			r.changedWrites += count
		} else {
			r.storm += count
		}
	}
	proc.Stop(b)
	return r
}

func (r scaleResult) report(b *testing.B, n int, floor time.Duration) {
	const mib = 1 << 20
	ratio := r.allReady.Seconds() / floor.Seconds()
	b.ReportMetric(floor.Seconds(), "floor-ready-s")
	b.ReportMetric(r.allReady.Seconds(), "teleop-ready-s")
	b.ReportMetric(ratio, "ready-ratio")
	b.ReportMetric(float64(r.steady.RSS)/mib, "RSS-MiB")
	b.ReportMetric(r.restartReady.Seconds(), "restart-ready-s")
	b.ReportMetric(float64(r.storm), "restart-status-writes")
	b.Logf("%d TeleApps: all Ready in %.1fs; the client-go floor %.1fs; ratio %.2f", n, r.allReady.Seconds(), floor.Seconds(), ratio)
	b.Logf("operator memory with %d TeleApps: RSS %.1f MiB (peak %.1f MiB)", n, float64(r.steady.RSS)/mib, float64(r.steady.PeakRSS)/mib)
	b.Logf("restart with %d apps scaled while down: caches synced %.2fs, every status right %.2fs after the process started; RSS %.1f MiB (peak %.1f MiB)",
		r.changed, r.synced.Seconds(), r.restartReady.Seconds(), float64(r.afterRestart.RSS)/mib, float64(r.afterRestart.PeakRSS)/mib)
	b.Logf("writes after the restart: %d on the %d unchanged apps (a storm if > 0), %d on the %d changed ones", r.storm, n-r.changed, r.changedWrites, r.changed)
	if r.storm > 0 {
		b.Errorf("status update storm: %d writes to TeleApps whose status was already right", r.storm)
	}
}

// namedWorld is a world in a namespace of the given name, with clients
// limited like the operator's.
func namedWorld(b *testing.B, c *cluster.Cluster, budget *rest.Config, namespace string) *world {
	w := newWorldFor(b, c, budget)
	_, err := w.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatalf("create namespace %s: %v", namespace, err)
	}
	w.ns = namespace
	return w
}

// writes counts the modifications of the namespace's TeleApps from now on,
// by name, from a watch: each MODIFIED event is one write that got through.
type writes struct {
	mu     sync.Mutex
	counts map[string]int
	w      watch.Interface
	done   chan struct{}
}

func countWrites(b *testing.B, w *world, namespace string) *writes {
	list, err := w.tele.TeleopV1alpha1().TeleApps(namespace).List(context.Background(), metav1.ListOptions{Limit: 1})
	if err != nil {
		b.Fatalf("list TeleApps: %v", err)
	}
	wi, err := w.tele.TeleopV1alpha1().TeleApps(namespace).Watch(context.Background(), metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		b.Fatalf("watch TeleApps: %v", err)
	}
	wr := &writes{counts: map[string]int{}, w: wi, done: make(chan struct{})}
	go func() {
		defer close(wr.done)
		for ev := range wi.ResultChan() {
			if app, ok := ev.Object.(*v1alpha1.TeleApp); ok && ev.Type == watch.Modified {
				wr.mu.Lock()
				wr.counts[app.Name]++
				wr.mu.Unlock()
			}
		}
	}()
	return wr
}

func (wr *writes) stop() map[string]int {
	wr.w.Stop()
	<-wr.done
	return wr.counts
}
