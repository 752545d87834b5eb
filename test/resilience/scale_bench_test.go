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
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/cluster"
)

// envScaleApps sets how many TeleApps BenchmarkScale runs with; 1000 when
// unset, 10000 for the figures of docs/benchmarks.md.
const envScaleApps = "TELEOP_SCALE_APPS"

// podsPerNode is what a fake node of test/cluster holds (with room to spare).
const podsPerNode = 4000

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
	available := countWhen(b, informer, n, func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == 1
	})
	startInformers(b, factory, informer)
	start := time.Now()
	inParallel(b, n, func(i int) error {
		_, err := w.kube.AppsV1().Deployments(namespace).Create(context.Background(), floorDeployment(namespace, appName(i)), metav1.CreateOptions{})
		return err
	})
	return available.wait(b, "floor Deployments available", start)
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
	allReady      time.Duration // create burst start → every TeleApp Ready
	steady        memory        // with every TeleApp Ready
	synced        time.Duration // restart → caches synced
	restartReady  time.Duration // restart → every status right again
	afterRestart  memory
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
	allReady := countWhen(b, informer, n, readyWith(one))
	startInformers(b, factory, informer)

	var r scaleResult
	proc := startOperator(b, c.Kubeconfig, "")
	proc.waitLog(b, logCachesSynced, time.Minute)
	start := time.Now()
	inParallel(b, n, func(i int) error {
		_, err := w.tele.TeleopV1alpha1().TeleApps(namespace).Create(ctx, teleApp(namespace, appName(i), 1), metav1.CreateOptions{})
		return err
	})
	r.allReady = allReady.wait(b, "TeleApps Ready", start)
	r.steady = mustMemory(b, proc)
	proc.stop(b)

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
	restartReady := countWhen(b, informer, n, readyWith(want))
	inParallel(b, r.changed, func(i int) error {
		_, err := w.tele.TeleopV1alpha1().TeleApps(namespace).Patch(ctx, appName(i*100), types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
		return err
	})
	writes := countWrites(b, w, namespace)

	proc = startOperator(b, c.Kubeconfig, "")
	r.synced = proc.waitLog(b, logCachesSynced, 2*time.Minute)
	r.restartReady = restartReady.wait(b, "TeleApps right after the restart", proc.started)
	time.Sleep(5 * time.Second) // room for a late storm to show
	r.afterRestart = mustMemory(b, proc)
	for name, count := range writes.stop() {
		if changed[name] {
			r.changedWrites += count
		} else {
			r.storm += count
		}
	}
	proc.stop(b)
	return r
}

func (r scaleResult) report(b *testing.B, n int, floor time.Duration) {
	const mib = 1 << 20
	ratio := r.allReady.Seconds() / floor.Seconds()
	b.ReportMetric(floor.Seconds(), "floor-ready-s")
	b.ReportMetric(r.allReady.Seconds(), "teleop-ready-s")
	b.ReportMetric(ratio, "ready-ratio")
	b.ReportMetric(float64(r.steady.rss)/mib, "RSS-MiB")
	b.ReportMetric(r.restartReady.Seconds(), "restart-ready-s")
	b.ReportMetric(float64(r.storm), "restart-status-writes")
	b.Logf("%d TeleApps: all Ready in %.1fs; the client-go floor %.1fs; ratio %.2f", n, r.allReady.Seconds(), floor.Seconds(), ratio)
	b.Logf("operator memory with %d TeleApps: RSS %.1f MiB (peak %.1f MiB)", n, float64(r.steady.rss)/mib, float64(r.steady.peakRSS)/mib)
	b.Logf("restart with %d apps scaled while down: caches synced %.2fs, every status right %.2fs after the process started; RSS %.1f MiB (peak %.1f MiB)",
		r.changed, r.synced.Seconds(), r.restartReady.Seconds(), float64(r.afterRestart.rss)/mib, float64(r.afterRestart.peakRSS)/mib)
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

func mustMemory(b *testing.B, p *operatorProcess) memory {
	m, err := p.memory()
	if err != nil {
		b.Fatalf("operator memory: %v", err)
	}
	return m
}

// inParallel calls fn for 0..n-1 from operator.DefaultWorkers goroutines,
// the concurrency teleop reconciles with.
func inParallel(b *testing.B, n int, fn func(i int) error) {
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range operator.DefaultWorkers {
		wg.Go(func() {
			for i := range work {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("burst: %v", err)
	}
}

// startInformers starts a factory until the benchmark ends and waits for
// the first list, so it is not part of any timing.
func startInformers[F interface {
	Start(<-chan struct{})
	Shutdown()
}](b *testing.B, factory F, informer cache.SharedIndexInformer) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		b.Fatal("informer did not sync")
	}
}

// counter notes the moment the number of objects for which a predicate
// holds first reaches want.
type counter struct {
	mu        sync.Mutex
	want      int
	count     int
	ok        map[string]bool
	reachedAt time.Time
	done      chan struct{}
	remove    func()
}

// countWhen counts the informer's objects of type T for which ok holds.
func countWhen[T metav1.Object](b *testing.B, informer cache.SharedIndexInformer, want int, ok func(T) bool) *counter {
	c := &counter{want: want, ok: map[string]bool{}, done: make(chan struct{})}
	observe := func(obj any, deleted bool) {
		if tombstone, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
			obj = tombstone.Obj
		}
		if o, isT := obj.(T); isT {
			c.observe(o.GetName(), !deleted && ok(o))
		}
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { observe(obj, false) },
		UpdateFunc: func(_, obj any) { observe(obj, false) },
		DeleteFunc: func(obj any) { observe(obj, true) },
	})
	if err != nil {
		b.Fatalf("watch: %v", err)
	}
	c.remove = func() { _ = informer.RemoveEventHandler(reg) }
	return c
}

func (c *counter) observe(name string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ok && !c.ok[name]:
		c.count++
	case !ok && c.ok[name]:
		c.count--
	}
	c.ok[name] = ok
	if c.count >= c.want && c.reachedAt.IsZero() {
		c.reachedAt = time.Now()
		close(c.done)
	}
}

// wait returns how long after start the count reached want.
func (c *counter) wait(b *testing.B, what string, start time.Time) time.Duration {
	defer c.remove()
	const timeout = 30 * time.Minute
	select {
	case <-c.done:
		return c.reachedAt.Sub(start)
	case <-time.After(timeout):
		b.Fatalf("%s: not reached within %v", what, timeout)
		return 0
	}
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
