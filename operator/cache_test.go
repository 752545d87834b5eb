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

			key, err := cache.MetaNamespaceKeyFunc(obj)
			require.NoError(t, err)
			assert.Equal(t, testNamespace+"/web-1", key, "the cache keys a podState as it keys the pod")
			again, err := cachedPod(obj)
			require.NoError(t, err)
			assert.Same(t, obj, again, "a podState the cache hands back stays as it is")
		})
	}
	_, err := cachedPod(ownedDeployment(app))
	assert.Error(t, err)
}

func TestSlimForCache(t *testing.T) {
	app := teleApp("web")
	d := ownedDeployment(app, rolledOut(3, 3, 2, 2))
	d.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}
	obj, err := slimForCache(d.DeepCopy())
	require.NoError(t, err)
	slim := obj.(*appsv1.Deployment)
	assert.Nil(t, slim.Spec.Selector, "what teleop does not read is dropped")
	assert.Empty(t, slim.ManagedFields)
	assert.Equal(t, judge(app, d, nil, nil), judge(app, slim, nil, nil), "the status rules see the same in a slim Deployment")
	again, err := slimForCache(slim.DeepCopy())
	require.NoError(t, err)
	assert.Equal(t, slim, again, "slimming is idempotent")

	service := ownedService(teleApp("web", withPort(8080)))
	service.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "teleop"}}
	obj, err = slimForCache(service.DeepCopy())
	require.NoError(t, err)
	service.ManagedFields = nil
	assert.Equal(t, service, obj, "other objects lose only their managedFields")
}
