package operator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
