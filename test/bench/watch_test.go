package bench

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

// watched is one namespace seen through informers, so that timing and
// counting writes cost the API server nothing beyond one watch per kind.
type watched struct {
	deployments, teleApps cache.SharedIndexInformer
	writes                *benchkit.Writes
}

func watch(b *testing.B, c *cluster.Cluster, namespace string) *watched {
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kubernetes.NewForConfigOrDie(c.RESTConfig()), 0, kubeinformers.WithNamespace(namespace))
	teleFactory := teleinformers.NewSharedInformerFactoryWithOptions(versioned.NewForConfigOrDie(c.RESTConfig()), 0, teleinformers.WithNamespace(namespace))
	w := &watched{
		deployments: kubeFactory.Apps().V1().Deployments().Informer(),
		teleApps:    teleFactory.Teleop().V1alpha1().TeleApps().Informer(),
		writes:      benchkit.NewWrites(),
	}
	events := kubeFactory.Core().V1().Events().Informer()
	benchkit.StartInformers(b, kubeFactory, w.deployments, events)
	benchkit.StartInformers(b, teleFactory, w.teleApps)
	w.writes.Deployments(b, w.deployments)
	w.writes.TeleApps(b, w.teleApps)
	w.writes.Events(b, events, operator.EventComponent)
	return w
}

// phase sends n requests from the operator's number of writers and waits
// for right (every Deployment has the wanted replicas), then ready.
func (w *watched) phase(b *testing.B, n int, request func(i int) error, right, ready *benchkit.Counter) phaseResult {
	before := w.writes.Counts()
	start := time.Now()
	benchkit.Burst(b, n, request)
	r := phaseResult{sent: time.Since(start)}
	r.right = right.Wait(b, "every Deployment with the wanted replicas", start, phaseTimeout)
	r.ready = ready.Wait(b, "every app ready", start, phaseTimeout)
	r.writes = benchkit.Since(w.writes.Counts(), before)
	return r
}

func (w *watched) deploymentsWith(b *testing.B, n int, replicas int32) *benchkit.Counter {
	return benchkit.Count(b, w.deployments, n, func(d *appsv1.Deployment) bool { return ptr.Deref(d.Spec.Replicas, -1) == replicas })
}

// deploymentsAvailable is the floor's ready: all replicas available.
func (w *watched) deploymentsAvailable(b *testing.B, n int, replicas int32) *benchkit.Counter {
	return benchkit.Count(b, w.deployments, n, func(d *appsv1.Deployment) bool {
		s := d.Status
		return ptr.Deref(d.Spec.Replicas, -1) == replicas && s.ObservedGeneration >= d.Generation &&
			s.Replicas == replicas && s.UpdatedReplicas == replicas && s.AvailableReplicas == replicas
	})
}

// teleAppsReady is teleop's ready: the status of the current generation
// says Ready with the wanted replicas ready.
func (w *watched) teleAppsReady(b *testing.B, n int, want func(name string) int32) *benchkit.Counter {
	return benchkit.Count(b, w.teleApps, n, func(a *v1alpha1.TeleApp) bool {
		s := a.Status
		return s.ObservedGeneration == a.Generation && s.Phase == v1alpha1.PhaseReady && s.ReadyReplicas == want(a.Name)
	})
}

// deleteNamespaces deletes namespaces ("" is none) and waits until they
// are gone with everything in them, so the next side starts on an empty
// cluster. Finalizers left on TeleApps by a stopped teleop are removed
// first, as `teleop uninstall` would.
func deleteNamespaces(b *testing.B, c *cluster.Cluster, namespaces ...string) {
	ctx := context.Background()
	kube, tele := kubernetes.NewForConfigOrDie(c.RESTConfig()), versioned.NewForConfigOrDie(c.RESTConfig())
	for _, ns := range namespaces {
		if ns == "" {
			continue
		}
		apps, err := tele.TeleopV1alpha1().TeleApps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatalf("list TeleApps of %s: %v", ns, err)
		}
		benchkit.Burst(b, len(apps.Items), func(i int) error {
			if len(apps.Items[i].Finalizers) == 0 {
				return nil
			}
			_, err := tele.TeleopV1alpha1().TeleApps(ns).Patch(ctx, apps.Items[i].Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			return err
		})
		if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			b.Fatalf("delete namespace %s: %v", ns, err)
		}
	}
	for _, ns := range namespaces {
		if ns == "" {
			continue
		}
		err := wait.PollUntilContextTimeout(ctx, time.Second, phaseTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
		if err != nil {
			b.Fatalf("namespace %s not gone: %v", ns, err)
		}
	}
}
