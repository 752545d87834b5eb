package operator

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// podState is all the controller keeps of a pod: an app's status reads
// from its pods only whether one is stuck (podProblemReasons), the
// readiness counts come from the Deployment. A corev1.Pod is 1,192 bytes
// before any data, and a cached pod even cut down to its labels and
// container states was about 2.5 KB: pods are most of what teleop caches.
type podState struct {
	namespace, name string
	app             string // the pod's LabelName label, by which podsByApp indexes it
	deleting        bool
	problem         string // the first container waiting reason in podProblemReasons; "" when none
}

// GetObjectMeta gives the cache the pod's namespace and name to key it by.
func (p *podState) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: p.namespace, Name: p.name}
}

// podProblemReasons are container waiting reasons that make a TeleApp
// Degraded: the pods will not become ready without a change.
var podProblemReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"ErrImagePull":               true,
	"CrashLoopBackOff":           true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
}

// cachedPod is the pod informer's transform.
var cachedPod = cachedAs(podStateOf)

func podStateOf(p *corev1.Pod) *podState {
	return &podState{
		namespace: p.Namespace,
		name:      p.Name,
		app:       p.Labels[v1alpha1.LabelName],
		deleting:  p.DeletionTimestamp != nil,
		problem:   waitingProblem(p),
	}
}

func waitingProblem(p *corev1.Pod) string {
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if w := cs.State.Waiting; w != nil && podProblemReasons[w.Reason] {
				return w.Reason
			}
		}
	}
	return ""
}

// podsByApp indexes pods by "<namespace>/<app>", the value of the label
// teleop selects an app's pods by: a sync reads its app's pods without
// going through every pod of the namespace.
const podsByApp = "teleop-app"

func podAppIndex(obj any) ([]string, error) {
	pod, ok := obj.(*podState)
	if !ok || pod.app == "" {
		return nil, nil
	}
	return []string{pod.namespace + "/" + pod.app}, nil
}

// podHandler enqueues the app of a pod whose problem shows in the app's
// status (podProblem) when the problem comes or goes: the readiness
// counts come from the Deployment, which enqueues the app itself, so the
// pods of a rollout that goes well cost no sync of their own.
func (c *Controller) podHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueTroubledPodApp,
		UpdateFunc: func(old, obj any) {
			before, wasState := old.(*podState)
			after, isState := obj.(*podState)
			switch {
			case !wasState || !isState:
				c.enqueuePodApp(obj) // reports what is not a podState
			case before.app == after.app && before.shownProblem() == after.shownProblem():
			default:
				c.enqueueTroubledPodApp(before)
				c.enqueueTroubledPodApp(after)
			}
		},
		DeleteFunc: c.enqueueTroubledPodApp,
	}
}

// shownProblem is the problem of the pod that its app's status shows.
func (p *podState) shownProblem() string {
	if p.deleting {
		return ""
	}
	return p.problem
}

// enqueueTroubledPodApp enqueues the TeleApp of a pod with a problem that
// shows.
func (c *Controller) enqueueTroubledPodApp(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if pod, ok := obj.(*podState); ok && pod.shownProblem() == "" {
		return
	}
	c.enqueuePodApp(obj)
}

// enqueuePodApp enqueues the TeleApp a pod belongs to.
func (c *Controller) enqueuePodApp(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(*podState)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("unexpected object of type %T in the pod handler", obj))
		return
	}
	if pod.app != "" {
		c.enqueueIfApp(pod.namespace, pod.app)
	}
}

// podsOf returns the pods of the app key: those selectorLabels selects.
func (c *Controller) podsOf(key cache.ObjectName) ([]*podState, error) {
	objs, err := c.pods.ByIndex(podsByApp, key.String())
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", key, err)
	}
	pods := make([]*podState, len(objs))
	for i, obj := range objs {
		pods[i] = obj.(*podState)
	}
	return pods, nil
}
