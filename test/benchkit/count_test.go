package benchkit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

const namespace = "bench"

func deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
	}
}

func scaledTo(replicas int32) func(*appsv1.Deployment) bool {
	return func(d *appsv1.Deployment) bool { return ptr.Deref(d.Spec.Replicas, -1) == replicas }
}

// deploymentInformer is a synced informer on the fake clientset's Deployments.
func deploymentInformer(t *testing.T, kube kubernetes.Interface) cache.SharedIndexInformer {
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithNamespace(namespace))
	informer := factory.Apps().V1().Deployments().Informer()
	StartInformers(t, factory, informer)
	return informer
}

func TestCountReachesWantWhenEnoughObjectsMatch(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset(deployment("a", 2), deployment("b", 1))
	informer := deploymentInformer(t, kube)
	start := time.Now()
	scaled := Count(t, informer, 2, scaledTo(2))

	_, err := kube.AppsV1().Deployments(namespace).Update(ctx, deployment("b", 2), metav1.UpdateOptions{})
	require.NoError(t, err)

	took := scaled.Wait(t, "scaled to 2", start, time.Minute)
	assert.Greater(t, took, time.Duration(0))
	assert.Less(t, took, time.Since(start))
}

func TestCountForgetsObjectsThatStopMatching(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset(deployment("a", 2), deployment("b", 2), deployment("c", 1))
	informer := deploymentInformer(t, kube)
	scaled := Count(t, informer, 3, scaledTo(2))

	// a no longer matches and b is gone: c matching makes 1 of 3, not 3.
	_, err := kube.AppsV1().Deployments(namespace).Update(ctx, deployment("a", 1), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, kube.AppsV1().Deployments(namespace).Delete(ctx, "b", metav1.DeleteOptions{}))
	_, err = kube.AppsV1().Deployments(namespace).Update(ctx, deployment("c", 2), metav1.UpdateOptions{})
	require.NoError(t, err)

	failure := failureOf(t, func(tb testing.TB) { scaled.Wait(tb, "scaled to 2", time.Now(), 500*time.Millisecond) })
	assert.Equal(t, "scaled to 2: only 1 of 3 after 500ms", failure)
}
