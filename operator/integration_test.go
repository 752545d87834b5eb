package operator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

const waitTimeout = 60 * time.Second

// env is one test's namespace on the shared control plane with an operator
// running in-process for that namespace only.
type env struct {
	t         *testing.T
	cluster   *cluster.Cluster
	kube      kubernetes.Interface
	tele      versioned.Interface
	namespace string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, operator.Options{Workers: 2, BlockedRecheck: time.Second})
}

// newEnvWith is newEnv with an operator of opts; its Namespace is the env's.
func newEnvWith(t *testing.T, opts operator.Options) *env {
	t.Helper()
	c := cluster.Shared(t)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := c.Namespace(t, "operator-test-")

	clients, err := operator.NewClients(c.RESTConfig(), operator.Options{})
	require.NoError(t, err)
	opts.Namespace = ns
	op, err := operator.New(clients, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return &env{t: t, cluster: c, kube: kube, tele: tele, namespace: ns}
}

func (e *env) create(app *v1alpha1.TeleApp) *v1alpha1.TeleApp {
	e.t.Helper()
	app.Namespace = e.namespace
	created, err := e.tele.TeleopV1alpha1().TeleApps(e.namespace).Create(context.Background(), app, metav1.CreateOptions{})
	require.NoError(e.t, err)
	return created
}

// eventually polls check until it reports done, failing the test with the
// last thing check said when waitTimeout passes.
func (e *env) eventually(what string, check func(ctx context.Context) (done bool, state string, err error)) {
	e.t.Helper()
	var last string
	start := time.Now()
	defer func() { e.t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond)) }()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		done, state, err := check(ctx)
		last = state
		return done, err
	})
	require.NoError(e.t, err, "waiting for %s; last seen: %s", what, last)
}

func (e *env) app(ctx context.Context, name string) (*v1alpha1.TeleApp, error) {
	return e.tele.TeleopV1alpha1().TeleApps(e.namespace).Get(ctx, name, metav1.GetOptions{})
}

// waitStatus waits until the TeleApp's status is observed for its current
// generation, in phase, with ready replicas ready.
func (e *env) waitStatus(name string, phase v1alpha1.Phase, ready int32) *v1alpha1.TeleApp {
	e.t.Helper()
	var app *v1alpha1.TeleApp
	e.eventually(fmt.Sprintf("TeleApp %s %s with %d ready", name, phase, ready), func(ctx context.Context) (bool, string, error) {
		var err error
		if app, err = e.app(ctx, name); err != nil {
			return false, err.Error(), nil
		}
		s := app.Status
		state := fmt.Sprintf("phase %q ready %d message %q observedGeneration %d/%d", s.Phase, s.ReadyReplicas, s.Message, s.ObservedGeneration, app.Generation)
		return s.ObservedGeneration == app.Generation && s.Phase == phase && s.ReadyReplicas == ready, state, nil
	})
	return app
}

// waitDeployment waits until the Deployment exists and satisfies ok.
func (e *env) waitDeployment(name string, ok func(*appsv1.Deployment) bool) *appsv1.Deployment {
	e.t.Helper()
	var d *appsv1.Deployment
	e.eventually("Deployment "+name, func(ctx context.Context) (bool, string, error) {
		var err error
		if d, err = e.kube.AppsV1().Deployments(e.namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err.Error(), nil
		}
		return ok(d), fmt.Sprintf("replicas %d image %s", ptr.Deref(d.Spec.Replicas, -1), d.Spec.Template.Spec.Containers[0].Image), nil
	})
	return d
}

func (e *env) podsOf(ctx context.Context, name string) ([]corev1.Pod, error) {
	list, err := e.kube.CoreV1().Pods(e.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{v1alpha1.LabelName: name}).String(),
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func teleApp(name, image string, replicas int32) *v1alpha1.TeleApp {
	return &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.TeleAppSpec{Image: image, Replicas: ptr.To(replicas)},
	}
}

func hasReplicasAndImage(replicas int32, image string) func(*appsv1.Deployment) bool {
	return func(d *appsv1.Deployment) bool {
		return ptr.Deref(d.Spec.Replicas, -1) == replicas && d.Spec.Template.Spec.Containers[0].Image == image
	}
}

func TestTeleAppLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app := e.create(teleApp("web", "nginx:1.27", 3))

	// create → Deployment with the right spec and a controller ownerReference
	d := e.waitDeployment("web", hasReplicasAndImage(3, "nginx:1.27"))
	assert.Equal(t, map[string]string{v1alpha1.LabelName: "web", v1alpha1.LabelManagedBy: "teleop"}, d.Labels)
	assert.Equal(t, map[string]string{v1alpha1.LabelName: "web"}, d.Spec.Selector.MatchLabels)
	assert.True(t, metav1.IsControlledBy(d, app), "ownerReferences: %+v", d.OwnerReferences)

	// → pods Running → status Ready 3/3 with conditions
	e.eventually("3 running pods", func(ctx context.Context) (bool, string, error) {
		pods, err := e.podsOf(ctx, "web")
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 3, fmt.Sprintf("%d of %d pods running", running, len(pods)), err
	})
	app = e.waitStatus("web", v1alpha1.PhaseReady, 3)
	s := app.Status
	assert.Equal(t, []int32{3, 3, 3}, []int32{s.Replicas, s.AvailableReplicas, s.UpdatedReplicas})
	assert.Equal(t, "app.kubernetes.io/name=web", s.Selector)
	assert.Equal(t, "3/3 replicas ready", s.Message)
	for condType, want := range map[string]metav1.ConditionStatus{
		v1alpha1.ConditionReady: metav1.ConditionTrue, v1alpha1.ConditionProgressing: metav1.ConditionFalse, v1alpha1.ConditionDegraded: metav1.ConditionFalse,
	} {
		c := meta.FindStatusCondition(s.Conditions, condType)
		require.NotNil(t, c, condType)
		assert.Equal(t, want, c.Status, condType)
		assert.Equal(t, app.Generation, c.ObservedGeneration, condType)
	}

	// kubectl scale tapp/web --replicas=5 (the scale subresource) → Deployment 5, status 5/5
	_, err := e.cluster.Kubectl(ctx, "-n", e.namespace, "scale", "tapp/web", "--replicas=5")
	require.NoError(t, err)
	e.waitDeployment("web", hasReplicasAndImage(5, "nginx:1.27"))
	e.waitStatus("web", v1alpha1.PhaseReady, 5)

	// a hand edit of the Deployment is reverted
	edited := e.waitDeployment("web", hasReplicasAndImage(5, "nginx:1.27")).DeepCopy()
	edited.Spec.Replicas = ptr.To[int32](1)
	edited.Spec.Template.Spec.Containers[0].Image = "evil:latest"
	_, err = e.kube.AppsV1().Deployments(e.namespace).Update(ctx, edited, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.waitDeployment("web", hasReplicasAndImage(5, "nginx:1.27"))
	e.waitStatus("web", v1alpha1.PhaseReady, 5)
	e.waitEvent("web", corev1.EventTypeNormal, operator.ReasonDriftCorrected)

	// delete → Deployment, ReplicaSets and pods garbage-collected
	require.NoError(t, e.tele.TeleopV1alpha1().TeleApps(e.namespace).Delete(ctx, "web", metav1.DeleteOptions{}))
	e.eventually("Deployment, ReplicaSets and pods of web garbage-collected", func(ctx context.Context) (bool, string, error) {
		_, err := e.kube.AppsV1().Deployments(e.namespace).Get(ctx, "web", metav1.GetOptions{})
		deploymentGone := apierrors.IsNotFound(err)
		rs, err := e.kube.AppsV1().ReplicaSets(e.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		pods, err := e.podsOf(ctx, "web")
		state := fmt.Sprintf("deployment gone %v, %d replicasets, %d pods", deploymentGone, len(rs.Items), len(pods))
		return deploymentGone && len(rs.Items) == 0 && len(pods) == 0, state, err
	})
}

// teleop corrects only the fields it owns: what others set on its
// Deployment (resources, the revision history, an annotation) stays through
// a drift correction and a scale, although teleop's cache does not hold it.
func TestCorrectionsKeepWhatOthersSet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(teleApp("web", "nginx:1.27", 2))
	e.waitStatus("web", v1alpha1.PhaseReady, 2)

	handEdit := `{"metadata":{"annotations":{"team":"web"}},"spec":{"replicas":1,"revisionHistoryLimit":3,` +
		`"template":{"spec":{"containers":[{"name":"app","image":"evil:latest","resources":{"requests":{"cpu":"10m"}}}]}}}}`
	_, err := e.kube.AppsV1().Deployments(e.namespace).Patch(ctx, "web", types.StrategicMergePatchType, []byte(handEdit), metav1.PatchOptions{})
	require.NoError(t, err)
	e.waitDeployment("web", hasReplicasAndImage(2, "nginx:1.27"))
	_, err = e.cluster.Kubectl(ctx, "-n", e.namespace, "scale", "tapp/web", "--replicas=4")
	require.NoError(t, err)

	d := e.waitDeployment("web", hasReplicasAndImage(4, "nginx:1.27"))
	assert.Equal(t, "web", d.Annotations["team"])
	assert.Equal(t, int32(3), *d.Spec.RevisionHistoryLimit)
	assert.Equal(t, "10m", d.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String())
	e.waitStatus("web", v1alpha1.PhaseReady, 4)
}

func TestServiceFollowsPort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(teleApp("api", "nginx:1.27", 1))
	e.waitStatus("api", v1alpha1.PhaseReady, 1)
	_, err := e.kube.CoreV1().Services(e.namespace).Get(ctx, "api", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "no port, no Service: %v", err)

	// port added → Service
	_, err = e.tele.TeleopV1alpha1().TeleApps(e.namespace).Patch(ctx, "api", types.MergePatchType, []byte(`{"spec":{"port":8080}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	var svc *corev1.Service
	e.eventually("Service api", func(ctx context.Context) (bool, string, error) {
		svc, err = e.kube.CoreV1().Services(e.namespace).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
	app, err := e.app(ctx, "api")
	require.NoError(t, err)
	assert.True(t, metav1.IsControlledBy(svc, app))
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	assert.NotEmpty(t, svc.Spec.ClusterIP)
	assert.Equal(t, map[string]string{v1alpha1.LabelName: "api"}, svc.Spec.Selector)
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, int32(8080), svc.Spec.Ports[0].Port)
	d := e.waitDeployment("api", func(d *appsv1.Deployment) bool { return len(d.Spec.Template.Spec.Containers[0].Ports) == 1 })
	assert.Equal(t, int32(8080), d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort)

	// port removed → Service gone
	_, err = e.tele.TeleopV1alpha1().TeleApps(e.namespace).Patch(ctx, "api", types.MergePatchType, []byte(`{"spec":{"port":null}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.eventually("Service api deleted", func(ctx context.Context) (bool, string, error) {
		_, err := e.kube.CoreV1().Services(e.namespace).Get(ctx, "api", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, fmt.Sprintf("still there (%v)", err), nil
	})
}

func TestInvalidSpecsAreRejected(t *testing.T) {
	c := cluster.Shared(t)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	tests := []struct {
		name        string
		app         *v1alpha1.TeleApp
		wantMessage string
	}{
		{name: "name not a DNS label", app: teleApp("Web_1", "nginx:1.27", 1), wantMessage: "name must be a DNS-1123 label"},
		{name: "empty image", app: teleApp("web", "", 1), wantMessage: "spec.image: Invalid value: \"\": spec.image in body should be at least 1 chars long"},
		{name: "image with spaces", app: teleApp("web", "nginx latest", 1), wantMessage: "spec.image: Invalid value: \"nginx latest\": image must be an image reference such as nginx:1.27"},
		{name: "image ending in a colon", app: teleApp("web", "nginx:", 1), wantMessage: "image must be an image reference such as nginx:1.27"},
		{name: "101 replicas", app: teleApp("web", "nginx:1.27", 101), wantMessage: "spec.replicas: Invalid value: 101: spec.replicas in body should be less than or equal to 100"},
		{name: "negative replicas", app: teleApp("web", "nginx:1.27", -1), wantMessage: "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"},
		{name: "port 0", app: func() *v1alpha1.TeleApp {
			a := teleApp("web", "nginx:1.27", 1)
			a.Spec.Port = ptr.To[int32](0)
			return a
		}(), wantMessage: "spec.port in body should be greater than or equal to 1"},
		{name: "port 70000", app: func() *v1alpha1.TeleApp {
			a := teleApp("web", "nginx:1.27", 1)
			a.Spec.Port = ptr.To[int32](70000)
			return a
		}(), wantMessage: "spec.port in body should be less than or equal to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tele.TeleopV1alpha1().TeleApps("default").Create(context.Background(), tt.app, metav1.CreateOptions{})

			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)
			assert.Contains(t, err.Error(), tt.wantMessage)
			_, err = tele.TeleopV1alpha1().TeleApps("default").Get(context.Background(), tt.app.Name, metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "nothing was created")
		})
	}
}

func TestBrokenImageIsDegraded(t *testing.T) {
	e := newEnv(t)
	e.create(teleApp("broken", "nginx:broken", 2))

	app := e.waitStatus("broken", v1alpha1.PhaseDegraded, 0)

	assert.Regexp(t, `^ImagePullBackOff on broken-[a-z0-9]+-[a-z0-9]+( \(and 1 more pod\))?$`, app.Status.Message)
	podName := strings.Fields(app.Status.Message)[2]
	_, err := e.kube.CoreV1().Pods(e.namespace).Get(context.Background(), podName, metav1.GetOptions{})
	assert.NoError(t, err, "the message names an existing pod")
	degraded := meta.FindStatusCondition(app.Status.Conditions, v1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, metav1.ConditionTrue, degraded.Status)
	assert.Equal(t, "ImagePullBackOff", degraded.Reason)
	e.waitEvent("broken", corev1.EventTypeWarning, operator.ReasonDegraded)
}

func TestForeignDeploymentIsNotTakenOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	foreign := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: e.namespace, Labels: map[string]string{"team": "other"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "other"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "other"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "theirs:1"}}},
			},
		},
	}
	_, err := e.kube.AppsV1().Deployments(e.namespace).Create(ctx, foreign, metav1.CreateOptions{})
	require.NoError(t, err)

	e.create(teleApp("web", "nginx:1.27", 3))
	app := e.waitStatus("web", v1alpha1.PhaseFailed, 0)

	assert.Contains(t, app.Status.Message, "is not managed by this TeleApp; teleop will not take it over")
	e.waitEvent("web", corev1.EventTypeWarning, operator.ReasonErrResourceExists)
	d, err := e.kube.AppsV1().Deployments(e.namespace).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, d.OwnerReferences, "not adopted")
	assert.Equal(t, int32(1), *d.Spec.Replicas, "not scaled")
	assert.Equal(t, "theirs:1", d.Spec.Template.Spec.Containers[0].Image, "not changed")

	// Once the other Deployment is gone, the TeleApp gets its own.
	require.NoError(t, e.kube.AppsV1().Deployments(e.namespace).Delete(ctx, "web", metav1.DeleteOptions{}))
	e.waitStatus("web", v1alpha1.PhaseReady, 3)
}

// waitEvent waits for an Event of type and reason on the TeleApp name.
func (e *env) waitEvent(name, eventType, reason string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%s Event %s on %s", eventType, reason, name), func(ctx context.Context) (bool, string, error) {
		events, err := e.kube.CoreV1().Events(e.namespace).List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=TeleApp,involvedObject.name=" + name,
		})
		if err != nil {
			return false, "", err
		}
		var seen []string
		for _, ev := range events.Items {
			if ev.Type == eventType && ev.Reason == reason {
				return true, "", nil
			}
			seen = append(seen, ev.Type+" "+ev.Reason)
		}
		return false, fmt.Sprintf("events: %v", seen), nil
	})
}
