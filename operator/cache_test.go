package operator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

func TestSlimForCache(t *testing.T) {
	app := teleApp("web")
	fullPod := func(opts ...podOption) *corev1.Pod {
		p := appPod(app, "web-1", opts...)
		p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
		p.Annotations = map[string]string{"big": "annotation"}
		p.Spec = corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: containerName, Image: "nginx:1.27"}},
			Volumes: []corev1.Volume{{Name: "token"}}}
		return p
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
	}{
		{name: "running pod", pod: fullPod()},
		{name: "pod in ImagePullBackOff", pod: fullPod(waiting("ImagePullBackOff"))},
		{name: "terminating pod", pod: fullPod(waiting("CrashLoopBackOff"), terminating())},
	}
	d := ownedDeployment(app, rolledOut(3, 3, 2, 2))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := slimForCache(tt.pod.DeepCopy())
			require.NoError(t, err)
			slim := obj.(*corev1.Pod)

			assert.Empty(t, slim.Spec.Containers, "the spec is dropped")
			assert.Empty(t, slim.ManagedFields)
			assert.Empty(t, slim.Annotations)
			assert.Equal(t, tt.pod.Labels, slim.Labels)
			assert.Equal(t, judge(app, d, []*corev1.Pod{tt.pod}, nil), judge(app, d, []*corev1.Pod{slim}, nil),
				"the status rules see the same in a slim pod")
			again, err := slimForCache(slim.DeepCopy())
			require.NoError(t, err)
			assert.Equal(t, slim, again, "slimming is idempotent")
		})
	}

	service := ownedService(teleApp("web", withPort(8080)))
	service.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "teleop"}}
	obj, err := slimForCache(service.DeepCopy())
	require.NoError(t, err)
	service.ManagedFields = nil
	assert.Equal(t, service, obj, "other objects lose only their managedFields")
}

// A slim cached Deployment leads to the same decisions as the whole object:
// the same status, and the same patch (or none) for every change.
func TestSlimDeploymentDecidesAsTheWholeObject(t *testing.T) {
	app := teleApp("web", withPort(8080), withEnv("MODE", "prod"))
	tests := []struct {
		name    string
		app     *v1alpha1.TeleApp
		current *appsv1.Deployment
	}{
		{name: "as asked", app: app, current: ownedDeployment(app, rolledOut(3, 3, 3, 3))},
		{name: "rolling out", app: app, current: ownedDeployment(app, rolledOut(3, 3, 1, 1))},
		{name: "spec replicas changed", app: teleApp("web", withPort(8080), withEnv("MODE", "prod"), withReplicas(5)), current: ownedDeployment(app)},
		{name: "image edited by hand", app: app, current: ownedDeployment(app, withDeploymentImage("evil:latest"))},
		{name: "env removed from spec", app: teleApp("web", withPort(8080)), current: ownedDeployment(app)},
		{name: "port removed from spec", app: teleApp("web", withEnv("MODE", "prod")), current: ownedDeployment(app)},
		{
			name: "sidecar added by hand", app: app,
			current: ownedDeployment(app, func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "side", Image: "busybox"})
			}),
		},
		{
			name: "managed-by label removed by hand", app: app,
			current: ownedDeployment(app, func(d *appsv1.Deployment) { delete(d.Labels, v1alpha1.LabelManagedBy) }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.current.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}
			obj, err := slimForCache(tt.current.DeepCopy())
			require.NoError(t, err)
			slim := obj.(*appsv1.Deployment)

			assert.Nil(t, slim.Spec.Selector, "what teleop does not read is dropped")
			assert.Empty(t, slim.ManagedFields)
			assert.Equal(t, judge(tt.app, tt.current, nil, nil), judge(tt.app, slim, nil, nil), "the status rules see the same")
			assert.Equal(t, patchFor(t, tt.app, tt.current), patchFor(t, tt.app, slim), "the same correction")
			again, err := slimForCache(slim.DeepCopy())
			require.NoError(t, err)
			assert.Equal(t, slim, again, "slimming is idempotent")
		})
	}
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
