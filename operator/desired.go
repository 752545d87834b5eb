package operator

import (
	"encoding/json"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// containerName is the name of the one container of every owned Deployment.
const containerName = "app"

// AnnotationRestartedAt is the pod template annotation that kubectl rollout
// restart sets; teleop copies spec.restartedAt into it, so a restart asked of
// the TeleApp is the same rolling restart kubectl users know.
const AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"

// selectorLabels select the pods of a TeleApp; they are immutable on a
// Deployment, so they hold only the name.
func selectorLabels(app *v1alpha1.TeleApp) map[string]string {
	return map[string]string{v1alpha1.LabelName: app.Name}
}

// ownedLabels are put on everything teleop creates for a TeleApp, pods
// included (the pod informer selects on managed-by).
func ownedLabels(app *v1alpha1.TeleApp) map[string]string {
	return map[string]string{
		v1alpha1.LabelName:      app.Name,
		v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
	}
}

// podSelector is the selector string reported in status for the scale
// subresource.
func podSelector(app *v1alpha1.TeleApp) string {
	return labels.SelectorFromSet(selectorLabels(app)).String()
}

func ownerReferences(app *v1alpha1.TeleApp) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(app, v1alpha1.SchemeGroupVersion.WithKind("TeleApp"))}
}

func desiredContainer(app *v1alpha1.TeleApp) corev1.Container {
	c := corev1.Container{Name: containerName, Image: app.Spec.Image}
	for _, e := range app.Spec.Env {
		c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if app.Spec.Port != nil {
		c.Ports = []corev1.ContainerPort{{ContainerPort: *app.Spec.Port, Protocol: corev1.ProtocolTCP}}
	}
	return c
}

// newDeployment is the Deployment a TeleApp asks for.
func newDeployment(app *v1alpha1.TeleApp) *appsv1.Deployment {
	replicas := app.Spec.DesiredReplicas()
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            app.Name,
			Namespace:       app.Namespace,
			Labels:          ownedLabels(app),
			OwnerReferences: ownerReferences(app),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selectorLabels(app)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: ownedLabels(app), Annotations: restartAnnotation(app)},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{desiredContainer(app)}},
			},
		},
	}
}

// reconcileDeployment returns what current must become for app, or nil
// when it already is. The fields teleop owns follow app; fields the API
// server defaulted stay, so an unchanged TeleApp never rewrites its
// Deployment. current, a cached object, is never written: the result is a
// shallow copy of it with new values for only what changed, so the usual
// sync, of an app that did not change, copies nothing.
func reconcileDeployment(app *v1alpha1.TeleApp, current *appsv1.Deployment) *appsv1.Deployment {
	desired := *current
	changed := false
	replicas := app.Spec.DesiredReplicas()
	if desired.Spec.Replicas == nil || *desired.Spec.Replicas != replicas {
		desired.Spec.Replicas = ptr.To(replicas)
		changed = true
	}
	changed = mergeLabels(&desired.Labels, ownedLabels(app)) || changed
	changed = mergeLabels(&desired.Spec.Template.Labels, ownedLabels(app)) || changed
	changed = mergeLabels(&desired.Spec.Template.Annotations, restartAnnotation(app)) || changed
	if containers := reconcileContainers(app, desired.Spec.Template.Spec.Containers); containers != nil {
		desired.Spec.Template.Spec.Containers = containers
		changed = true
	}
	if !changed {
		return nil
	}
	changedCopy := desired // only here on the heap: most syncs change nothing
	return &changedCopy
}

// deploymentPatch is the strategic merge patch that turns current into
// desired: only what teleop changes, so the fields its cached state
// (deploymentState) lacks, and those others set, stay as they are, and the controller
// manager's status writes cause no conflicts. It also names current's UID,
// which a patch cannot change: a Deployment deleted and created again since
// current was read refuses it.
func deploymentPatch(current, desired *appsv1.Deployment) ([]byte, error) {
	from := *current
	from.UID = "" // so that the patch carries the UID
	original, err := json.Marshal(&from)
	if err != nil {
		return nil, err
	}
	modified, err := json.Marshal(desired)
	if err != nil {
		return nil, err
	}
	return strategicpatch.CreateTwoWayMergePatch(original, modified, appsv1.Deployment{})
}

// reconcileContainers returns the one container app asks for, keeping what
// the API server defaulted in the first of containers, or nil when
// containers already are that. containers is not written.
func reconcileContainers(app *v1alpha1.TeleApp, containers []corev1.Container) []corev1.Container {
	want := desiredContainer(app)
	if len(containers) == 0 {
		return []corev1.Container{want}
	}
	got := containers[0]           // a copy whose fields are replaced, never written through
	changed := len(containers) > 1 // added by hand: the TeleApp runs one container
	if got.Name != want.Name || got.Image != want.Image {
		got.Name, got.Image = want.Name, want.Image
		changed = true
	}
	if !sameOrEmpty(got.Env, want.Env) {
		got.Env = want.Env
		changed = true
	}
	if !sameOrEmpty(got.Ports, want.Ports) {
		got.Ports = want.Ports
		changed = true
	}
	if !changed {
		return nil
	}
	return []corev1.Container{got}
}

// restartAnnotation is the pod template annotation that carries
// spec.restartedAt; none while the TeleApp was never restarted, so that a
// restart made on the Deployment with kubectl is not undone.
func restartAnnotation(app *v1alpha1.TeleApp) map[string]string {
	if app.Spec.RestartedAt == "" {
		return nil
	}
	return map[string]string{AnnotationRestartedAt: app.Spec.RestartedAt}
}

// newService is the ClusterIP Service of a TeleApp with a port; nil without.
func newService(app *v1alpha1.TeleApp) *corev1.Service {
	if app.Spec.Port == nil {
		return nil
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:            app.Name,
			Namespace:       app.Namespace,
			Labels:          ownedLabels(app),
			OwnerReferences: ownerReferences(app),
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selectorLabels(app),
			Ports:    servicePorts(*app.Spec.Port),
		},
	}
}

func servicePorts(port int32) []corev1.ServicePort {
	return []corev1.ServicePort{{
		Name:       "http",
		Protocol:   corev1.ProtocolTCP,
		Port:       port,
		TargetPort: intstr.FromInt32(port),
	}}
}

// reconcileService is reconcileDeployment for the Service: the cluster IP and
// other allocated fields stay, the type, selector and port follow the app.
func reconcileService(app *v1alpha1.TeleApp, current *corev1.Service) *corev1.Service {
	desired := *current
	changed := mergeLabels(&desired.Labels, ownedLabels(app))
	if desired.Spec.Type != corev1.ServiceTypeClusterIP {
		desired.Spec.Type = corev1.ServiceTypeClusterIP
		changed = true
	}
	if !equality.Semantic.DeepEqual(desired.Spec.Selector, selectorLabels(app)) {
		desired.Spec.Selector = selectorLabels(app)
		changed = true
	}
	want := servicePorts(*app.Spec.Port)[0]
	ports := desired.Spec.Ports
	if len(ports) != 1 || ports[0].Name != want.Name || ports[0].Protocol != want.Protocol ||
		ports[0].Port != want.Port || ports[0].TargetPort != want.TargetPort {
		desired.Spec.Ports = []corev1.ServicePort{want}
		changed = true
	}
	if !changed {
		return nil
	}
	return &desired
}

// mergeLabels adds or corrects want in *have, keeping other labels (or
// annotations), in a copy of the map: the one *have held may be a cached
// object's, and is never written.
func mergeLabels(have *map[string]string, want map[string]string) bool {
	var merged map[string]string
	for k, v := range want {
		if (*have)[k] == v {
			continue
		}
		if merged == nil {
			merged = make(map[string]string, len(*have)+1)
			maps.Copy(merged, *have)
		}
		merged[k] = v
	}
	if merged == nil {
		return false
	}
	*have = merged
	return true
}

// sameOrEmpty compares two slices semantically, a nil and an empty one alike.
func sameOrEmpty[T any](a, b []T) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return equality.Semantic.DeepEqual(a, b)
}
