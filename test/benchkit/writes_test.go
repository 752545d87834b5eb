package benchkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	telefake "github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
)

// teleApp is a TeleApp as stored at resourceVersion: the fake clientset
// keeps what it is given and does not count versions itself.
func teleApp(name string, generation int64, resourceVersion string) *v1alpha1.TeleApp {
	return &v1alpha1.TeleApp{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Generation: generation, ResourceVersion: resourceVersion}}
}

// waitCounts waits until w's counts equal want, and fails t if they do not
// within a few seconds.
func waitCounts(t *testing.T, w *Writes, want map[string]int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return assert.ObjectsAreEqual(want, w.Counts()), nil
	})
	require.NoError(t, err, "counts %v, want %v", w.Counts(), want)
}

func TestWritesClassifyTeleAppWritesAndCountThemByName(t *testing.T) {
	ctx := context.Background()
	client := telefake.NewSimpleClientset(teleApp("old", 1, "1"))
	factory := teleinformers.NewSharedInformerFactoryWithOptions(client, 0, teleinformers.WithNamespace(namespace))
	informer := factory.Teleop().V1alpha1().TeleApps().Informer()
	StartInformers(t, factory, informer)
	w := NewWrites()
	w.TeleApps(t, informer)
	apps := client.TeleopV1alpha1().TeleApps(namespace)

	_, err := apps.Create(ctx, teleApp("web", 1, "2"), metav1.CreateOptions{})
	require.NoError(t, err)
	withStatus := teleApp("web", 1, "3")
	withStatus.Status.Phase = v1alpha1.PhaseReady
	_, err = apps.UpdateStatus(ctx, withStatus, metav1.UpdateOptions{})
	require.NoError(t, err)
	scaled := withStatus.DeepCopy()
	scaled.Generation, scaled.ResourceVersion = 2, "4"
	_, err = apps.Update(ctx, scaled, metav1.UpdateOptions{})
	require.NoError(t, err)
	annotated := teleApp("old", 1, "5")
	annotated.Annotations = map[string]string{"teleop.io/announced": "{}"}
	_, err = apps.Update(ctx, annotated, metav1.UpdateOptions{})
	require.NoError(t, err)

	waitCounts(t, w, map[string]int{"TeleApp create": 1, "TeleApp status": 1, "TeleApp spec": 1, "TeleApp metadata": 1})
	assert.Equal(t, map[string]int{"web": 1}, w.ByName("TeleApp status"))
	assert.Equal(t, map[string]int{"old": 1}, w.ByName("TeleApp metadata"), "the object listed at the start is not a write")
	w.Stop()
}

func TestWritesCountDeploymentSpecsAndAComponentsEvents(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace(namespace))
	deployments := factory.Apps().V1().Deployments().Informer()
	events := factory.Core().V1().Events().Informer()
	StartInformers(t, factory, deployments, events)
	w := NewWrites()
	w.Deployments(t, deployments)
	w.Events(t, events, "teleop")

	d := deployment("web", 1)
	d.Generation, d.ResourceVersion = 1, "1"
	_, err := kube.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	d.Status, d.ResourceVersion = appsv1.DeploymentStatus{ReadyReplicas: 1}, "2" // the Deployment controller's
	_, err = kube.AppsV1().Deployments(namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	require.NoError(t, err)
	d.Generation, d.Spec.Replicas, d.ResourceVersion = 2, ptr.To[int32](2), "3"
	_, err = kube.AppsV1().Deployments(namespace).Update(ctx, d, metav1.UpdateOptions{})
	require.NoError(t, err)
	for i, component := range []string{"teleop", "deployment-controller"} {
		_, err = kube.CoreV1().Events(namespace).Create(ctx, &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("e%d", i), Namespace: namespace, ResourceVersion: "1"},
			Source:     corev1.EventSource{Component: component},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	waitCounts(t, w, map[string]int{"Deployment create": 1, "Deployment spec": 1, "Event": 1})
	w.Stop()
}

func TestSinceDropsWhatDidNotChange(t *testing.T) {
	got := Since(map[string]int{"a": 3, "b": 2, "c": 1}, map[string]int{"a": 1, "b": 2})
	assert.Equal(t, map[string]int{"a": 2, "c": 1}, got)
}
