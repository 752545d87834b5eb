package operator

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/actor"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

const testNamespace = "default"

// --- TeleApp ---

type appOption func(*v1alpha1.TeleApp)

func teleApp(name string, opts ...appOption) *v1alpha1.TeleApp {
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, UID: types.UID("uid-" + name), Generation: 1},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](3)},
	}
	for _, o := range opts {
		o(app)
	}
	return app
}

func withReplicas(n int32) appOption {
	return func(a *v1alpha1.TeleApp) { a.Spec.Replicas = ptr.To(n) }
}
func withoutReplicas() appOption { return func(a *v1alpha1.TeleApp) { a.Spec.Replicas = nil } }
func withImage(image string) appOption {
	return func(a *v1alpha1.TeleApp) { a.Spec.Image = image }
}
func withPort(port int32) appOption { return func(a *v1alpha1.TeleApp) { a.Spec.Port = ptr.To(port) } }
func withEnv(pairs ...string) appOption {
	return func(a *v1alpha1.TeleApp) {
		for i := 0; i+1 < len(pairs); i += 2 {
			a.Spec.Env = append(a.Spec.Env, v1alpha1.EnvVar{Name: pairs[i], Value: pairs[i+1]})
		}
	}
}
func withGeneration(g int64) appOption { return func(a *v1alpha1.TeleApp) { a.Generation = g } }

// withComputedStatus stores the status the controller would compute from d
// and pods, as if an earlier sync had written it, its image in the history.
func withComputedStatus(d *appsv1.Deployment, pods ...*corev1.Pod) appOption {
	return func(a *v1alpha1.TeleApp) {
		a.Status = computeStatus(a, d, cached(pods...), nil)
		a.Status.History = appendRevision(nil, a.Spec.Image, actor.Change{By: "kubectl-create"}, time.Unix(0, 0))
	}
}

// --- Deployment ---

type deploymentOption func(*appsv1.Deployment)

// ownedDeployment is the Deployment app asks for, as the API server returns
// it: with a uid, a generation and defaulted fields teleop does not set.
func ownedDeployment(app *v1alpha1.TeleApp, opts ...deploymentOption) *appsv1.Deployment {
	d := newDeployment(app)
	d.UID = types.UID("uid-deploy-" + app.Name)
	d.Generation = 1
	d.ResourceVersion = "1"
	d.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	d.Spec.Template.Spec.Containers[0].TerminationMessagePath = corev1.TerminationMessagePathDefault
	d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	for _, o := range opts {
		o(d)
	}
	return d
}

// foreignDeployment has the app's name but no controller reference to it.
func foreignDeployment(app *v1alpha1.TeleApp) *appsv1.Deployment {
	d := ownedDeployment(app)
	d.OwnerReferences = nil
	d.Labels = map[string]string{"app": "someone-else"}
	return d
}

// rolledOut reports the Deployment controller's view: observed, with these
// counts of replicas, updated, ready and available pods.
func rolledOut(replicas, updated, ready, available int32) deploymentOption {
	return func(d *appsv1.Deployment) {
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas, d.Status.UpdatedReplicas = replicas, updated
		d.Status.ReadyReplicas, d.Status.AvailableReplicas = ready, available
	}
}

func withDeploymentReplicas(n int32) deploymentOption {
	return func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(n) }
}

func withDeploymentImage(image string) deploymentOption {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

func withDeploymentGeneration(g int64) deploymentOption {
	return func(d *appsv1.Deployment) { d.Generation = g }
}

func withProgressDeadlineExceeded() deploymentOption {
	return func(d *appsv1.Deployment) {
		d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: deploymentReasonDeadlineExceeded, Message: `ReplicaSet "web-123" has timed out progressing.`,
		})
	}
}

// --- Service ---

func ownedService(app *v1alpha1.TeleApp) *corev1.Service {
	s := newService(app)
	s.UID = types.UID("uid-svc-" + app.Name)
	s.Spec.ClusterIP = "10.96.0.42"
	s.Spec.ClusterIPs = []string{"10.96.0.42"}
	s.Spec.SessionAffinity = corev1.ServiceAffinityNone
	return s
}

// --- Pod ---

type podOption func(*corev1.Pod)

func appPod(app *v1alpha1.TeleApp, name string, opts ...podOption) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: app.Namespace, Labels: ownedLabels(app)},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: containerName, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func waiting(reason string) podOption {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodPending
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "Back-off pulling image"},
		}}}
	}
}

func terminating() podOption {
	return func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) }
}

// cached is what the pod cache holds of pods.
func cached(pods ...*corev1.Pod) []*podState {
	states := make([]*podState, len(pods))
	for i, p := range pods {
		states[i] = podStateOf(p)
	}
	return states
}
