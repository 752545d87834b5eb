package uninstall_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/announce"
	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/uninstall"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

const otherFinalizer = "example.com/keep"

func teleApp(name string, finalizers ...string) *v1alpha1.TeleApp {
	return &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Notify: &v1alpha1.Notify{Chats: []string{"42"}}},
	}
}

// teleopDeployment stands for teleop's own Deployment, run by KWOK's nodes.
func teleopDeployment() *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "teleop"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "teleop"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "teleop", Image: "teleop:test"}}},
			},
		},
	}
}

func TestRunStopsTeleopThenReleasesEveryTeleApp(t *testing.T) {
	tests := []struct {
		name       string
		deployment bool
		wantSays   []string
	}{
		{name: "teleop running in the cluster", deployment: true,
			wantSays: []string{"scaled Deployment", "pods of Deployment", "released TeleApp", "from 2 of 3 TeleApps"}},
		{name: "teleop already gone", wantSays: []string{"no teleop to stop", "from 2 of 3 TeleApps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster.Shared(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			kube := kubernetes.NewForConfigOrDie(c.RESTConfig())
			tele := versioned.NewForConfigOrDie(c.RESTConfig())
			system, apps := c.Namespace(t, "uninstall-sys-"), c.Namespace(t, "uninstall-")
			for _, app := range []*v1alpha1.TeleApp{
				teleApp("held", announce.Finalizer),
				teleApp("shared", otherFinalizer, announce.Finalizer),
				teleApp("free"),
			} {
				_, err := tele.TeleopV1alpha1().TeleApps(apps).Create(ctx, app, metav1.CreateOptions{})
				require.NoError(t, err)
			}
			t.Cleanup(func() { // let the namespace go
				_, _ = tele.TeleopV1alpha1().TeleApps(apps).Patch(context.Background(), "shared", types.MergePatchType,
					[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			})
			if tt.deployment {
				_, err := kube.AppsV1().Deployments(system).Create(ctx, teleopDeployment(), metav1.CreateOptions{})
				require.NoError(t, err)
				require.Eventually(t, func() bool {
					pods, err := kube.CoreV1().Pods(system).List(ctx, metav1.ListOptions{})
					return err == nil && len(pods.Items) == 2
				}, time.Minute, 100*time.Millisecond, "teleop's pods start")
			}

			var out bytes.Buffer
			opts := uninstall.Options{Namespace: system, Deployment: "teleop", WatchNamespace: apps, Timeout: time.Minute, Out: &out}
			require.NoError(t, uninstall.Run(ctx, kube, tele, opts))
			for _, want := range tt.wantSays {
				assert.Contains(t, out.String(), want)
			}

			wantFinalizers := map[string][]string{"held": nil, "shared": {otherFinalizer}, "free": nil}
			for name, want := range wantFinalizers {
				app, err := tele.TeleopV1alpha1().TeleApps(apps).Get(ctx, name, metav1.GetOptions{})
				require.NoError(t, err)
				assert.Equal(t, want, app.Finalizers, name)
			}
			if tt.deployment {
				pods, err := kube.CoreV1().Pods(system).List(ctx, metav1.ListOptions{})
				require.NoError(t, err)
				assert.Empty(t, pods.Items, "teleop stopped before the release")
			}

			out.Reset()
			require.NoError(t, uninstall.Run(ctx, kube, tele, opts), "a second run")
			assert.Contains(t, out.String(), "from 0 of 3 TeleApps")

			require.NoError(t, tele.TeleopV1alpha1().TeleApps(apps).Delete(ctx, "held", metav1.DeleteOptions{}))
			_, err := tele.TeleopV1alpha1().TeleApps(apps).Get(ctx, "held", metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "a released TeleApp goes at once: %v", err)
		})
	}
}
