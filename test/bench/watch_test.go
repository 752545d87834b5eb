package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/cluster"
)

// watcher times conditions on a namespace's objects from a watch, so that
// measuring costs the API server nothing beyond one watch per kind.
type watcher[T metav1.Object] struct {
	informer cache.SharedIndexInformer
}

func watchDeployments(b *testing.B, c *cluster.Cluster, namespace string) *watcher[*appsv1.Deployment] {
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(kubernetes.NewForConfigOrDie(c.RESTConfig()), 0, kubeinformers.WithNamespace(namespace))
	informer := factory.Apps().V1().Deployments().Informer()
	startFactory(b, factory, informer)
	return &watcher[*appsv1.Deployment]{informer: informer}
}

func watchTeleApps(b *testing.B, c *cluster.Cluster, namespace string) *watcher[*v1alpha1.TeleApp] {
	factory := teleinformers.NewSharedInformerFactoryWithOptions(versioned.NewForConfigOrDie(c.RESTConfig()), 0, teleinformers.WithNamespace(namespace))
	informer := factory.Teleop().V1alpha1().TeleApps().Informer()
	startFactory(b, factory, informer)
	return &watcher[*v1alpha1.TeleApp]{informer: informer}
}

// startFactory starts a factory until the benchmark ends and waits for the
// informer's first list, so it is not part of any timing.
func startFactory[F interface {
	Start(<-chan struct{})
	Shutdown()
}](b *testing.B, factory F, informer cache.SharedIndexInformer) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		b.Fatal("watch cache did not sync")
	}
}

// track starts counting the objects for which ok holds; the returned tracker
// notes the moment the count first reaches want.
func (w *watcher[T]) track(b *testing.B, want int, ok func(T) bool) *tracker {
	t := &tracker{want: want, ok: map[string]bool{}, done: make(chan struct{})}
	observe := func(obj any) {
		if tombstone, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
			obj = tombstone.Obj
		}
		if o, isT := obj.(T); isT {
			t.observe(o.GetName(), ok(o))
		}
	}
	reg, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(obj any) {
			if o, isT := obj.(T); isT {
				t.observe(o.GetName(), false)
			}
		},
	})
	if err != nil {
		b.Fatalf("watch: %v", err)
	}
	t.remove = func() { _ = w.informer.RemoveEventHandler(reg) }
	return t
}

type tracker struct {
	mu        sync.Mutex
	want      int
	count     int
	ok        map[string]bool
	reachedAt time.Time
	done      chan struct{}
	remove    func()
}

func (t *tracker) observe(name string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case ok && !t.ok[name]:
		t.count++
	case !ok && t.ok[name]:
		t.count--
	}
	t.ok[name] = ok
	if t.count >= t.want && t.reachedAt.IsZero() {
		t.reachedAt = time.Now()
		close(t.done)
	}
}

// wait returns how long after start the count reached want.
func (t *tracker) wait(b *testing.B, what string, start time.Time) time.Duration {
	defer t.remove()
	select {
	case <-t.done:
		return t.reachedAt.Sub(start)
	case <-time.After(phaseTimeout):
		t.mu.Lock()
		defer t.mu.Unlock()
		b.Fatalf("%s: only %d of %d after %v", what, t.count, t.want, phaseTimeout)
		return 0
	}
}
