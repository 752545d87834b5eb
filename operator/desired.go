package operator

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

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

// reconcileDeployment makes the fields teleop owns on current what app asks
// for, leaving fields the API server defaulted alone so that an unchanged
// TeleApp never rewrites its Deployment. It reports whether it changed
// anything; current must be a copy the caller may mutate.
func reconcileDeployment(app *v1alpha1.TeleApp, current *appsv1.Deployment) bool {
	changed := false
	replicas := app.Spec.DesiredReplicas()
	if current.Spec.Replicas == nil || *current.Spec.Replicas != replicas {
		current.Spec.Replicas = &replicas
		changed = true
	}
	changed = mergeLabels(&current.Labels, ownedLabels(app)) || changed
	changed = mergeLabels(&current.Spec.Template.Labels, ownedLabels(app)) || changed
	changed = mergeLabels(&current.Spec.Template.Annotations, restartAnnotation(app)) || changed

	want := desiredContainer(app)
	containers := current.Spec.Template.Spec.Containers
	if len(containers) == 0 {
		current.Spec.Template.Spec.Containers = []corev1.Container{want}
		return true
	}
	if len(containers) > 1 { // added by hand: the TeleApp runs one container
		current.Spec.Template.Spec.Containers = containers[:1]
		changed = true
	}
	got := &current.Spec.Template.Spec.Containers[0]
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
	return changed
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
func reconcileService(app *v1alpha1.TeleApp, current *corev1.Service) bool {
	changed := mergeLabels(&current.Labels, ownedLabels(app))
	if current.Spec.Type != corev1.ServiceTypeClusterIP {
		current.Spec.Type = corev1.ServiceTypeClusterIP
		changed = true
	}
	if !equality.Semantic.DeepEqual(current.Spec.Selector, selectorLabels(app)) {
		current.Spec.Selector = selectorLabels(app)
		changed = true
	}
	want := servicePorts(*app.Spec.Port)[0]
	ports := current.Spec.Ports
	if len(ports) != 1 || ports[0].Name != want.Name || ports[0].Protocol != want.Protocol ||
		ports[0].Port != want.Port || ports[0].TargetPort != want.TargetPort {
		current.Spec.Ports = []corev1.ServicePort{want}
		changed = true
	}
	return changed
}

// mergeLabels adds or corrects want in *have, keeping other labels (or
// annotations).
func mergeLabels(have *map[string]string, want map[string]string) bool {
	changed := false
	for k, v := range want {
		if (*have)[k] == v {
			continue
		}
		if *have == nil {
			*have = map[string]string{}
		}
		(*have)[k] = v
		changed = true
	}
	return changed
}

// sameOrEmpty compares two slices semantically, a nil and an empty one alike.
func sameOrEmpty[T any](a, b []T) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return equality.Semantic.DeepEqual(a, b)
}
