// Package node proves the install path on a real node: the image `make
// image` builds, pushed to a loopback registry, installed with the Helm chart,
// runs on a real kubelet (containerd, runc) next to KWOK's fake nodes,
// becomes Ready through its probes, talks to the API server with its
// ServiceAccount token and to the Bot API, and reconciles a TeleApp whose
// pods land on the fake nodes. `make node-test` runs it (root; it changes
// this machine's network while it runs).
package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// envRun opts in: the test needs root and adds a bridge and an iptables rule
// while it runs, so `make test` leaves it to `make node-test`.
const envRun = "TELEOP_NODE_TEST"

const (
	imageVersion    = "v0.0.0-node"
	systemNamespace = "teleop-system"
	// readyTimeout bounds pull, start and the first passing readiness
	// probe, with slack for a loaded 2-core machine.
	readyTimeout = 3 * time.Minute
)

func TestChartRunsOnRealNode(t *testing.T) {
	if os.Getenv(envRun) == "" {
		t.Skipf("the real-node test runs with `make node-test` (%s=1): it needs root and changes this machine's network while it runs", envRun)
	}
	if err := cluster.RealNodeMissing(); err != nil {
		t.Skipf("this machine cannot run a real node: %v", err)
	}
	helm := filepath.Join(cluster.BinDir(), "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Skipf("helm missing in %s (make helm-bin builds it)", cluster.BinDir())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	registry := cluster.Registry(t)
	pause, err := cluster.PushPauseImage(ctx, registry)
	require.NoError(t, err)
	pushTeleopImage(t, ctx, registry)

	c, err := cluster.Start(ctx, cluster.Options{RealNode: &cluster.RealNode{SandboxImage: pause, Registries: []string{registry}}})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	t.Logf("control plane and real node ready after %s", c.ReadyAfter)

	emu := telegramemu.New(t, telegramemu.Options{ListenAddr: net.JoinHostPort(cluster.RealNodeIP, "0")})
	helmInstall(t, ctx, c, helm, registry, emu)

	kube := kubernetes.NewForConfigOrDie(c.RESTConfig())
	pod := waitTeleopReady(t, ctx, c, kube)
	assert.Equal(t, cluster.RealNodeName, pod.Spec.NodeName)
	_, podNet, _ := net.ParseCIDR(cluster.RealNodePodCIDR)
	assert.True(t, podNet.Contains(net.ParseIP(pod.Status.PodIP)), "pod IP %s from the node's bridge", pod.Status.PodIP)
	container := pod.Spec.Containers[0]
	assert.NotNil(t, container.ReadinessProbe, "readiness probe")
	assert.NotNil(t, container.LivenessProbe, "liveness probe")
	assert.True(t, mountsServiceAccountToken(container), "the ServiceAccount token is mounted")

	t.Run("reconciles a TeleApp onto the fake nodes", func(t *testing.T) {
		reconcilesTeleApp(t, ctx, c, kube)
	})
	t.Run("answers a chat through the Bot API", func(t *testing.T) {
		chat := telegramemu.Chat{ID: 4242, Type: "private"}
		emu.SendText(chat, telegramemu.User{ID: 4242, FirstName: "node"}, "/whoami")
		reply, err := emu.WaitMessage(ctx, chat.ID, func(telegramemu.Message) bool { return true })
		require.NoError(t, err, "no reply from the bot in the pod; its log:\n%s", teleopLog(ctx, c, pod.Name))
		assert.Contains(t, reply.Text, "telegram:4242")
	})

	current, err := kube.CoreV1().Pods(systemNamespace).Get(ctx, pod.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, current.Status.ContainerStatuses[0].RestartCount, "the liveness probe never restarted teleop")
}

// pushTeleopImage builds the image as `make image IMAGE_REPO=...` does and
// pushes it to the registry.
func pushTeleopImage(t *testing.T, ctx context.Context, registry string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/image", "-version", imageVersion, "-revision", "node-test",
		"-out", filepath.Join(t.TempDir(), "layout"), "-repo", registry+"/teleop")
	cmd.Dir = cluster.RepoRoot()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "hack/image: %s", out)
}

// helmInstall installs deploy/helm/teleop with the pushed image, pinned to
// the real node, with the emulator as its Bot API.
func helmInstall(t *testing.T, ctx context.Context, c *cluster.Cluster, helm, registry string, emu *telegramemu.Server) {
	t.Helper()
	values := fmt.Sprintf(`image:
  repository: %s/teleop
  tag: %s
replicas: 1
telegram:
  createSecret: true
  token: %q
  apiEndpoint: %q
nodeSelector:
  kubernetes.io/hostname: %s
tolerations:
  - key: %s
    operator: Exists
    effect: NoSchedule
`, registry, imageVersion, emu.Token(), emu.Endpoint(), cluster.RealNodeName, cluster.RealNodeTaint)
	path := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(path, []byte(values), 0o600))
	cmd := exec.CommandContext(ctx, helm, "install", "teleop", filepath.Join(cluster.RepoRoot(), "deploy/helm/teleop"),
		"--kubeconfig", c.Kubeconfig, "--namespace", systemNamespace, "--create-namespace", "--values", path)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helm install: %s", out)
}

// waitTeleopReady waits for the chart's pod to be Ready and returns it; on
// timeout it fails with what the pod, its events and kubelet say.
func waitTeleopReady(t *testing.T, ctx context.Context, c *cluster.Cluster, kube kubernetes.Interface) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, time.Second, readyTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(systemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=teleop"})
		if err != nil {
			return false, err
		}
		for i, p := range pods.Items {
			if podReady(&p) {
				ready = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		pods, _ := c.Kubectl(ctx, "get", "pods", "-A", "-o", "wide")
		events, _ := c.Kubectl(ctx, "get", "events", "-n", systemNamespace)
		t.Fatalf("teleop not Ready on the real node: %v\npods:\n%s\nevents:\n%s\nkubelet log: %s", err, pods, events,
			filepath.Join(c.Dir, "real-node", "kubelet.log"))
	}
	return ready
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func mountsServiceAccountToken(c corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" {
			return true
		}
	}
	return false
}

// teleopLog is the pod's log as kubectl logs reads it: API server, then the
// real kubelet.
func teleopLog(ctx context.Context, c *cluster.Cluster, pod string) string {
	out, err := c.Kubectl(ctx, "logs", "-n", systemNamespace, pod, "--tail=50")
	if err != nil {
		return err.Error()
	}
	return out
}

// reconcilesTeleApp creates a TeleApp and waits until the teleop on the
// real node made its Deployment and reports it Ready, with its pods on
// KWOK's nodes.
func reconcilesTeleApp(t *testing.T, ctx context.Context, c *cluster.Cluster, kube kubernetes.Interface) {
	apps := c.Namespace(t, "node-")
	tele := versioned.NewForConfigOrDie(c.RESTConfig())
	_, err := tele.TeleopV1alpha1().TeleApps(apps).Create(ctx, &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](2)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		app, err := tele.TeleopV1alpha1().TeleApps(apps).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return app.Status.Phase == v1alpha1.PhaseReady, nil
	})
	require.NoError(t, err, "the TeleApp did not become Ready")

	dep, err := kube.AppsV1().Deployments(apps).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, dep.OwnerReferences, 1)
	assert.Equal(t, "TeleApp", dep.OwnerReferences[0].Kind)
	pods, err := kube.CoreV1().Pods(apps).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=web"})
	require.NoError(t, err)
	require.Len(t, pods.Items, 2)
	for _, p := range pods.Items {
		assert.True(t, strings.HasPrefix(p.Spec.NodeName, "kwok-node-"), "pod %s on a fake node, not %s", p.Name, p.Spec.NodeName)
	}
}
