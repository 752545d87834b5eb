package operator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestCachedPod(t *testing.T) {
	app := teleApp("web")
	fullPod := func(opts ...podOption) *corev1.Pod {
		p := appPod(app, "web-1", opts...)
		p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
		p.Annotations = map[string]string{"big": "annotation"}
		p.Spec = corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: containerName, Image: "nginx:1.27"}},
			Volumes: []corev1.Volume{{Name: "token"}}}
		return p
	}
	initStuck := fullPod()
	initStuck.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError"},
	}}}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want podState
	}{
		{name: "running pod", pod: fullPod(), want: podState{namespace: testNamespace, name: "web-1", app: "web"}},
		{name: "pod starting", pod: fullPod(waiting("ContainerCreating")), want: podState{namespace: testNamespace, name: "web-1", app: "web"}},
		{name: "pod in ImagePullBackOff", pod: fullPod(waiting("ImagePullBackOff")),
			want: podState{namespace: testNamespace, name: "web-1", app: "web", problem: "ImagePullBackOff"}},
		{name: "init container stuck", pod: initStuck,
			want: podState{namespace: testNamespace, name: "web-1", app: "web", problem: "CreateContainerConfigError"}},
		{name: "terminating pod", pod: fullPod(waiting("CrashLoopBackOff"), terminating()),
			want: podState{namespace: testNamespace, name: "web-1", app: "web", deleting: true, problem: "CrashLoopBackOff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := cachedPod(tt.pod)
			require.NoError(t, err)
			assert.Equal(t, &tt.want, obj)

			assertCachedAs(t, cachedPod, obj, testNamespace+"/web-1")
		})
	}
	_, err := cachedPod(ownedDeployment(app))
	assert.Error(t, err)
}

func TestCachedDeployment(t *testing.T) {
	app := teleApp("web")
	tests := []struct {
		name       string
		deployment *appsv1.Deployment
	}{
		{name: "rolled out", deployment: ownedDeployment(app, rolledOut(3, 3, 3, 3))},
		{name: "rolling out", deployment: ownedDeployment(app, withDeploymentGeneration(2), rolledOut(3, 1, 2, 2))},
		{name: "rollout gave up", deployment: ownedDeployment(app, rolledOut(3, 1, 2, 2), withProgressDeadlineExceeded())},
		{name: "labels set by hand", deployment: ownedDeployment(app, func(d *appsv1.Deployment) { d.Labels["team"] = "web" })},
		{name: "not teleop's", deployment: foreignDeployment(app)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := tt.deployment
			full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}
			full.Status.Conditions = append(full.Status.Conditions, appsv1.DeploymentCondition{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
			})
			before := full.DeepCopy()

			obj, err := cachedDeployment(full)
			require.NoError(t, err)
			state := obj.(*deploymentState)
			cached := state.deployment()

			assert.Equal(t, before, full, "the decoded Deployment is not written")
			assert.Nil(t, cached.Spec.Selector, "what teleop does not read is dropped")
			assert.Empty(t, cached.ManagedFields)
			assert.Equal(t, judge(app, full, nil, nil), judge(app, cached, nil, nil), "the status rules see the same in the cached Deployment")
			assert.Equal(t, metav1.IsControlledBy(full, app), metav1.IsControlledBy(cached, app))
			assertCachedAs(t, cachedDeployment, state, testNamespace+"/web")
		})
	}
	_, err := cachedDeployment(appPod(app, "web-1"))
	assert.Error(t, err)
}

// assertCachedAs checks that the cache keys a state as it keys the object
// it came from, and that the transform leaves a state as it is.
func assertCachedAs(t *testing.T, transform cache.TransformFunc, state any, wantKey string) {
	t.Helper()
	key, err := cache.MetaNamespaceKeyFunc(state)
	require.NoError(t, err)
	assert.Equal(t, wantKey, key, "keyed as the object it came from")
	again, err := transform(state)
	require.NoError(t, err)
	assert.Same(t, state, again, "a state the cache hands back stays as it is")
}

func TestStripManagedFields(t *testing.T) {
	service := ownedService(teleApp("web", withPort(8080)))
	service.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "teleop"}}
	obj, err := stripManagedFields(service.DeepCopy())
	require.NoError(t, err)
	service.ManagedFields = nil
	assert.Equal(t, service, obj, "other objects lose only their managedFields")
}
