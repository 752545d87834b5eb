package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// ownCluster starts a cluster for this test alone (fault tests must not stop
// the shared API server under other packages), honouring TELEOP_SKIP_CLUSTER.
func ownCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	if os.Getenv(cluster.EnvSkip) == "1" {
		t.Skip("SKIPPED: needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	c, err := cluster.Start(context.Background(), cluster.Options{})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	t.Logf("control plane ready after %v in %s", c.ReadyAfter, c.Dir)
	return c
}

func newDeployment(name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// testNamespace creates a namespace removed at the end of the test.
func testNamespace(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	ctx := context.Background()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cluster-test-"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

func podsOf(ctx context.Context, client kubernetes.Interface, namespace, app string) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{"app": app}).String(),
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

func TestDeploymentsRunOnFakeNodes(t *testing.T) {
	tests := []struct {
		name     string
		image    string
		replicas int32
		// wantPod is what every pod of the Deployment must come to.
		wantPod func(corev1.Pod) bool
		// wantAvailable is the Deployment's final availableReplicas.
		wantAvailable int32
	}{
		{
			name:     "healthy image runs and becomes available",
			image:    "nginx:1.27",
			replicas: 3,
			wantPod: func(p corev1.Pod) bool {
				return p.Status.Phase == corev1.PodRunning && podReady(p)
			},
			wantAvailable: 3,
		},
		{
			name:     "broken image stays in ImagePullBackOff",
			image:    "x:broken",
			replicas: 1,
			wantPod: func(p corev1.Pod) bool {
				return p.Status.Phase == corev1.PodPending && !podReady(p) &&
					len(p.Status.ContainerStatuses) == 1 &&
					p.Status.ContainerStatuses[0].State.Waiting != nil &&
					p.Status.ContainerStatuses[0].State.Waiting.Reason == "ImagePullBackOff"
			},
			wantAvailable: 0,
		},
	}
	c := cluster.Shared(t)
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	namespace := testNamespace(t, client)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			name := strings.ReplaceAll(strings.Split(tt.image, ":")[0], ".", "-") + "-app"
			begin := time.Now()
			_, err := client.AppsV1().Deployments(namespace).Create(ctx, newDeployment(name, tt.image, tt.replicas), metav1.CreateOptions{})
			require.NoError(t, err)

			var pods []corev1.Pod
			err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				pods, err = podsOf(ctx, client, namespace, name)
				if err != nil || len(pods) != int(tt.replicas) {
					return false, err
				}
				for _, p := range pods {
					if !tt.wantPod(p) {
						return false, nil
					}
				}
				return true, nil
			})
			require.NoError(t, err, "pods: %s", describePods(pods))
			t.Logf("%d pods as wanted after %v", tt.replicas, time.Since(begin))

			if tt.wantAvailable > 0 {
				err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
					d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
					return err == nil && d.Status.AvailableReplicas == tt.wantAvailable, err
				})
				require.NoError(t, err)
				t.Logf("Deployment available after %v", time.Since(begin))
			}
			// The pods stay as they are: KWOK does not move them on.
			time.Sleep(500 * time.Millisecond)
			pods, err = podsOf(ctx, client, namespace, name)
			require.NoError(t, err)
			for _, p := range pods {
				assert.True(t, tt.wantPod(p), "pod %s changed: %s", p.Name, describePods([]corev1.Pod{p}))
			}
			d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, tt.wantAvailable, d.Status.AvailableReplicas)
		})
	}
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func describePods(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "%s node=%q phase=%s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(p))
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil {
				fmt.Fprintf(&b, " waiting=%s", cs.State.Waiting.Reason)
			}
		}
		b.WriteString("; ")
	}
	return b.String()
}

func TestClientRecoversAfterAPIServerRestart(t *testing.T) {
	c := ownCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	_, err = client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "before-restart"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, c.StopAPIServer())
	_, err = client.CoreV1().ConfigMaps("default").Get(ctx, "before-restart", metav1.GetOptions{})
	require.Error(t, err, "the API server is down")

	begin := time.Now()
	require.NoError(t, c.StartAPIServer(ctx))
	t.Logf("API server back after %v", time.Since(begin))

	got, err := client.CoreV1().ConfigMaps("default").Get(ctx, "before-restart", metav1.GetOptions{})
	require.NoError(t, err, "the same client works again, with the data kept in etcd")
	assert.Equal(t, "before-restart", got.Name)
	out, err := c.Kubectl(ctx, "get", "configmap", "before-restart", "-o", "name")
	require.NoError(t, err)
	assert.Equal(t, "configmap/before-restart\n", out)
}

func TestImpersonationIsSubjectToRBAC(t *testing.T) {
	c := cluster.Shared(t)
	ctx := context.Background()
	client, err := kubernetes.NewForConfig(c.Impersonate("telegram:42", "telegram:users"))
	require.NoError(t, err)
	_, err = client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `User "telegram:42" cannot list resource "pods"`)
}

func TestKubectlReportsErrorsFromStderr(t *testing.T) {
	c := cluster.Shared(t)
	_, err := c.Kubectl(context.Background(), "get", "configmap", "does-not-exist")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `configmaps "does-not-exist" not found`)
}

func TestSharedInstallsTheCRDs(t *testing.T) {
	c := cluster.Shared(t)
	out, err := c.Kubectl(context.Background(), "get", "crd", "-o", "name")
	require.NoError(t, err)
	assert.Contains(t, out, "customresourcedefinition.apiextensions.k8s.io/teleapps.teleop.io")
	_, err = c.Kubectl(context.Background(), "get", "tapp", "-A")
	require.NoError(t, err, "the short name of the TeleApp kind is served")
}

func TestStartFailsClearlyWithoutBinaries(t *testing.T) {
	_, err := cluster.Start(context.Background(), cluster.Options{BinDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make cluster-bin")
}
