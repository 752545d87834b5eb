package operator

import (
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deploymentState is what the controller caches of a Deployment: its
// identity, labels and owners, the replicas, the pod template's labels and
// annotations, the name, image, env and ports of its containers, the
// status counts and why it is not progressing. The selector, the strategy
// and the fields the API server defaulted stay on the server only: teleop
// corrects a Deployment with a patch of what it changes (deploymentPatch),
// never by writing back a cached copy. An appsv1.Deployment with its one
// container is 1.7 KB of structs before any data.
type deploymentState struct {
	metav1.ObjectMeta // name, namespace, UID, resourceVersion, generation, labels, owners, deletion
	replicas          *int32
	podLabels         map[string]string // the Labels map itself when equal to it
	podAnnotations    map[string]string
	containers        []containerState
	status            appsv1.DeploymentStatus // its conditions cut to Progressing (progressingOnly)
}

type containerState struct {
	name, image string
	env         []corev1.EnvVar
	ports       []corev1.ContainerPort
}

// cachedDeployment is the Deployment informer's transform.
var cachedDeployment = cachedAs(deploymentStateOf)

func deploymentStateOf(d *appsv1.Deployment) *deploymentState {
	containers := make([]containerState, len(d.Spec.Template.Spec.Containers))
	for i, c := range d.Spec.Template.Spec.Containers {
		containers[i] = containerState{name: c.Name, image: c.Image, env: c.Env, ports: c.Ports}
	}
	podLabels := d.Spec.Template.Labels
	if maps.Equal(podLabels, d.Labels) {
		podLabels = d.Labels // one map for both: cached maps are never written (mergeLabels)
	}
	status := d.Status
	status.Conditions = progressingOnly(d.Status.Conditions)
	return &deploymentState{
		ObjectMeta: metav1.ObjectMeta{
			Name:              d.Name,
			Namespace:         d.Namespace,
			UID:               d.UID,
			ResourceVersion:   d.ResourceVersion,
			Generation:        d.Generation,
			Labels:            d.Labels,
			OwnerReferences:   d.OwnerReferences,
			DeletionTimestamp: d.DeletionTimestamp,
		},
		replicas:       d.Spec.Replicas,
		podLabels:      podLabels,
		podAnnotations: d.Spec.Template.Annotations,
		containers:     containers,
		status:         status,
	}
}

// progressingOnly keeps of a Deployment's conditions what judge reads: the
// Progressing condition's reason, and its message when it tells that the
// rollout gave up.
func progressingOnly(conditions []appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	for _, c := range conditions {
		if c.Type != appsv1.DeploymentProgressing {
			continue
		}
		kept := appsv1.DeploymentCondition{Type: c.Type, Status: c.Status, Reason: c.Reason}
		if c.Reason == deploymentReasonDeadlineExceeded {
			kept.Message = c.Message
		}
		return []appsv1.DeploymentCondition{kept}
	}
	return nil
}

// deployment is the Deployment the cache holds, as the reconcile and status
// rules read it. It shares the state's maps and slices, which neither
// writes.
func (s *deploymentState) deployment() *appsv1.Deployment {
	containers := make([]corev1.Container, len(s.containers))
	for i, c := range s.containers {
		containers[i] = corev1.Container{Name: c.name, Image: c.image, Env: c.env, Ports: c.ports}
	}
	return &appsv1.Deployment{
		ObjectMeta: s.ObjectMeta,
		Spec: appsv1.DeploymentSpec{
			Replicas: s.replicas,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: s.podLabels, Annotations: s.podAnnotations},
				Spec:       corev1.PodSpec{Containers: containers},
			},
		},
		Status: s.status,
	}
}

// cachedDeploymentOf returns the cached Deployment namespace/name, or a
// NotFound error.
func (c *Controller) cachedDeploymentOf(namespace, name string) (*appsv1.Deployment, error) {
	obj, exists, err := c.deployments.GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, apierrors.NewNotFound(appsv1.Resource("deployments"), name)
	}
	return obj.(*deploymentState).deployment(), nil
}
