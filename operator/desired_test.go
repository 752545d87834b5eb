package operator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

func TestNewDeployment(t *testing.T) {
	tests := []struct {
		name         string
		app          *v1alpha1.TeleApp
		wantReplicas int32
		wantEnv      []corev1.EnvVar
		wantPorts    []corev1.ContainerPort
	}{
		{name: "replicas and image", app: teleApp("web"), wantReplicas: 3},
		{name: "replicas unset defaults to one", app: teleApp("web", withoutReplicas()), wantReplicas: 1},
		{name: "zero replicas", app: teleApp("web", withReplicas(0)), wantReplicas: 0},
		{
			name:         "env in order",
			app:          teleApp("web", withEnv("B", "2", "A", "1")),
			wantReplicas: 3,
			wantEnv:      []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}},
		},
		{
			name:         "port becomes containerPort",
			app:          teleApp("web", withPort(8080)),
			wantReplicas: 3,
			wantPorts:    []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeployment(tt.app)

			assert.Equal(t, "web", d.Name)
			assert.Equal(t, testNamespace, d.Namespace)
			wantLabels := map[string]string{v1alpha1.LabelName: "web", v1alpha1.LabelManagedBy: "teleop"}
			assert.Equal(t, wantLabels, d.Labels)
			assert.Equal(t, wantLabels, d.Spec.Template.Labels)
			assert.Equal(t, map[string]string{v1alpha1.LabelName: "web"}, d.Spec.Selector.MatchLabels)
			require.Len(t, d.OwnerReferences, 1)
			ref := d.OwnerReferences[0]
			assert.Equal(t, "teleop.io/v1alpha1", ref.APIVersion)
			assert.Equal(t, "TeleApp", ref.Kind)
			assert.Equal(t, tt.app.UID, ref.UID)
			assert.True(t, *ref.Controller)
			assert.True(t, *ref.BlockOwnerDeletion)
			assert.Equal(t, tt.wantReplicas, *d.Spec.Replicas)
			require.Len(t, d.Spec.Template.Spec.Containers, 1)
			c := d.Spec.Template.Spec.Containers[0]
			assert.Equal(t, tt.app.Spec.Image, c.Image)
			assert.Equal(t, tt.wantEnv, c.Env)
			assert.Equal(t, tt.wantPorts, c.Ports)
		})
	}
}

func TestReconcileDeployment(t *testing.T) {
	app := teleApp("web", withPort(8080), withEnv("MODE", "prod"))
	tests := []struct {
		name        string
		app         *v1alpha1.TeleApp
		current     *appsv1.Deployment
		wantChanged bool
	}{
		{name: "as asked, with server defaults", app: app, current: ownedDeployment(app)},
		{name: "replicas edited by hand", app: app, current: ownedDeployment(app, withDeploymentReplicas(7)), wantChanged: true},
		{name: "image edited by hand", app: app, current: ownedDeployment(app, withDeploymentImage("evil:latest")), wantChanged: true},
		{name: "spec replicas changed", app: teleApp("web", withPort(8080), withEnv("MODE", "prod"), withReplicas(5)), current: ownedDeployment(app), wantChanged: true},
		{name: "env removed from spec", app: teleApp("web", withPort(8080)), current: ownedDeployment(app), wantChanged: true},
		{name: "port removed from spec", app: teleApp("web", withEnv("MODE", "prod")), current: ownedDeployment(app), wantChanged: true},
		{
			name: "sidecar added by hand", app: app, wantChanged: true,
			current: ownedDeployment(app, func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "side", Image: "busybox"})
			}),
		},
		{
			name: "managed-by label removed by hand", app: app, wantChanged: true,
			current: ownedDeployment(app, func(d *appsv1.Deployment) { delete(d.Labels, v1alpha1.LabelManagedBy) }),
		},
		{
			name: "foreign labels are kept", app: app,
			current: ownedDeployment(app, func(d *appsv1.Deployment) { d.Labels["team"] = "web" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.current.DeepCopy()
			desired := reconcileDeployment(tt.app, tt.current)

			assert.Equal(t, before, tt.current, "the current Deployment, a cached object, is never written")
			assert.Equal(t, tt.wantChanged, desired != nil)
			assert.Equal(t, patchFor(t, tt.app, tt.current), patchFor(t, tt.app, deploymentStateOf(tt.current).deployment()),
				"the cached state leads to the same correction")
			if desired == nil {
				return
			}
			// After reconciling, the Deployment is as asked and stays so.
			assert.Nil(t, reconcileDeployment(tt.app, desired), "reconcile must converge in one step")
			assert.Equal(t, tt.app.Spec.DesiredReplicas(), *desired.Spec.Replicas)
			require.Len(t, desired.Spec.Template.Spec.Containers, 1)
			c := desired.Spec.Template.Spec.Containers[0]
			want := desiredContainer(tt.app)
			assert.Equal(t, want.Image, c.Image)
			assert.Equal(t, want.Env, c.Env)
			assert.Equal(t, want.Ports, c.Ports)
			assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy, "server-defaulted fields are kept")
		})
	}
}

func TestNewService(t *testing.T) {
	assert.Nil(t, newService(teleApp("web")), "no port, no Service")

	s := newService(teleApp("web", withPort(8080)))
	require.NotNil(t, s)
	assert.Equal(t, "web", s.Name)
	assert.Equal(t, corev1.ServiceTypeClusterIP, s.Spec.Type)
	assert.Equal(t, map[string]string{v1alpha1.LabelName: "web"}, s.Spec.Selector)
	require.Len(t, s.Spec.Ports, 1)
	assert.Equal(t, int32(8080), s.Spec.Ports[0].Port)
	assert.Equal(t, intstr.FromInt32(8080), s.Spec.Ports[0].TargetPort)
	require.Len(t, s.OwnerReferences, 1)
	assert.True(t, *s.OwnerReferences[0].Controller)
}

func TestReconcileService(t *testing.T) {
	app := teleApp("web", withPort(8080))
	tests := []struct {
		name        string
		app         *v1alpha1.TeleApp
		edit        func(*corev1.Service)
		wantChanged bool
	}{
		{name: "as asked", app: app, edit: func(*corev1.Service) {}},
		{name: "port changed in spec", app: teleApp("web", withPort(9090)), edit: func(*corev1.Service) {}, wantChanged: true},
		{name: "selector edited by hand", app: app, edit: func(s *corev1.Service) { s.Spec.Selector = map[string]string{"x": "y"} }, wantChanged: true},
		{name: "type edited by hand", app: app, edit: func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }, wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current := ownedService(app)
			tt.edit(current)

			before := current.DeepCopy()
			desired := reconcileService(tt.app, current)

			assert.Equal(t, before, current, "the current Service, a cached object, is never written")
			assert.Equal(t, tt.wantChanged, desired != nil)
			if desired == nil {
				desired = current
			}
			assert.Nil(t, reconcileService(tt.app, desired), "reconcile must converge in one step")
			assert.Equal(t, "10.96.0.42", desired.Spec.ClusterIP, "the allocated cluster IP is kept")
			assert.Equal(t, *tt.app.Spec.Port, desired.Spec.Ports[0].Port)
		})
	}
}

func TestDesiredReplicas(t *testing.T) {
	assert.Equal(t, int32(1), teleApp("web", withoutReplicas()).Spec.DesiredReplicas())
	assert.Equal(t, int32(4), teleApp("web", withReplicas(4)).Spec.DesiredReplicas())
}

// patchFor is the patch teleop sends to make current what app asks, "" for none.
func patchFor(t *testing.T, app *v1alpha1.TeleApp, current *appsv1.Deployment) string {
	t.Helper()
	desired := reconcileDeployment(app, current)
	if desired == nil {
		return ""
	}
	patch, err := deploymentPatch(current, desired)
	require.NoError(t, err)
	return string(patch)
}

func TestDeploymentPatchIsFencedByTheUID(t *testing.T) {
	app := teleApp("web")
	current := ownedDeployment(app, withDeploymentReplicas(7))
	patch := patchFor(t, app, current)
	assert.JSONEq(t, `{"metadata":{"uid":"`+string(current.UID)+`"},"spec":{"replicas":3}}`, patch,
		"only the replicas change, on this Deployment and no namesake")
}

func TestReplacedSinceCached(t *testing.T) {
	invalid := func(path *field.Path) error {
		return apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
			field.ErrorList{field.Invalid(path, "x", "field is immutable")})
	}
	assert.True(t, replacedSinceCached(invalid(field.NewPath("metadata", "uid"))))
	assert.False(t, replacedSinceCached(invalid(field.NewPath("spec", "template", "spec", "containers").Index(0).Child("image"))),
		"an invalid Deployment is a failure of the app")
	assert.False(t, replacedSinceCached(apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", nil)))
	assert.False(t, replacedSinceCached(nil))
}
