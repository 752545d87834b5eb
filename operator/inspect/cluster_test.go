package inspect_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/inspect"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/runop"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// TestClusterEventsPodsAndLogs reads a running app's Events, pods and logs
// from the real API server; the logs come through pods/log from KWOK's
// kubelet server.
func TestClusterEventsPodsAndLogs(t *testing.T) {
	c := cluster.Shared(t)
	ctx := context.Background()
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := c.Namespace(t, "inspect-")
	runop.Start(t, c, ns)
	recorder, stop := apps.NewEventRecorder(kube, "teleop-inspect-test")
	t.Cleanup(stop)
	client := apps.New(tele, recorder)
	reader := inspect.New(kube)

	// web-api shares web's name as a prefix: none of its Events or pods are web's.
	for name, replicas := range map[string]int32{"web": 2, "web-api": 1} {
		_, err := client.Create(ctx, ns, name, "nginx:1.27", replicas, nil, apps.Audit{Actor: "test", Command: "/create " + name, RequestID: "create-" + name})
		require.NoError(t, err)
	}
	pods := waitPods(t, reader, ns, "web", func(pods []inspect.Pod) bool { return len(pods) == 2 && pods[0].Ready && pods[1].Ready })
	assert.True(t, !pods[0].Created.Before(pods[1].Created), "newest first")
	def, ok := inspect.DefaultPod(pods)
	require.True(t, ok)
	assert.Equal(t, pods[0], def, "all Ready: the newest")

	var events []inspect.Event
	require.Eventually(t, func() bool {
		events, err = reader.Events(ctx, ns, "web")
		require.NoError(t, err)
		return hasObject(events, "teleapp/web") && hasObject(events, "deployment/web") &&
			hasPrefix(events, "replicaset/web-") && hasPrefix(events, "pod/web-")
	}, 60*time.Second, 200*time.Millisecond, "events of web: %+v", events)
	for i, ev := range events {
		assert.NotContains(t, ev.Object, "web-api", "an Event of another app")
		assert.GreaterOrEqual(t, ev.Count, int32(1))
		if i > 0 {
			assert.False(t, ev.Last.After(events[i-1].Last), "not newest first: %+v", events)
		}
	}

	// Logs: the tail asked for, through the API server's pods/log.
	for _, lines := range []int64{1, 50, 200} {
		text, truncated, err := reader.Logs(ctx, ns, def.Name, lines)
		require.NoError(t, err)
		assert.False(t, truncated)
		assert.Equal(t, fakeLogTail(int(lines)), text)
	}
	_, _, err = reader.Logs(ctx, ns, "no-such-pod", 10)
	require.True(t, apierrors.IsNotFound(err), "want NotFound through pods/log, got %v", err)

	// A rollout that cannot pull: the new pod is not Ready, so it is the default.
	app, err := tele.TeleopV1alpha1().TeleApps(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	app.Spec.Image = "nginx:broken"
	_, err = tele.TeleopV1alpha1().TeleApps(ns).Update(ctx, app, metav1.UpdateOptions{})
	require.NoError(t, err)
	pods = waitPods(t, reader, ns, "web", func(pods []inspect.Pod) bool { return len(pods) == 3 })
	def, ok = inspect.DefaultPod(pods)
	require.True(t, ok)
	assert.False(t, def.Ready)
	broken, err := kube.CoreV1().Pods(ns).Get(ctx, def.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "nginx:broken", broken.Spec.Containers[0].Image)
}

// TestClusterLogsOfAPodWithoutNode: a pod bound to no node has no kubelet
// to read from; the API server answers with an empty log, not an error.
func TestClusterLogsOfAPodWithoutNode(t *testing.T) {
	c := cluster.Shared(t)
	ctx := context.Background()
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := c.Namespace(t, "inspect-")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "unscheduled", Namespace: ns},
		Spec: corev1.PodSpec{
			Containers:   []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
			NodeSelector: map[string]string{"no-such-label": "anywhere"},
		},
	}
	_, err = kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	text, truncated, err := inspect.New(kube).Logs(ctx, ns, "unscheduled", 10)
	require.NoError(t, err)
	assert.Empty(t, text)
	assert.False(t, truncated)
}

func waitPods(t *testing.T, reader *inspect.Reader, ns, name string, ok func([]inspect.Pod) bool) []inspect.Pod {
	t.Helper()
	var pods []inspect.Pod
	require.Eventually(t, func() bool {
		var err error
		pods, err = reader.Pods(context.Background(), ns, name)
		require.NoError(t, err)
		return ok(pods)
	}, 60*time.Second, 200*time.Millisecond, "pods of %s: %+v", name, pods)
	return pods
}

// fakeLogTail is the last n lines of every fake container's log.
func fakeLogTail(n int) string {
	var b strings.Builder
	for i := cluster.FakeLogLines - n + 1; i <= cluster.FakeLogLines; i++ {
		b.WriteString(cluster.FakeLogLine(i) + "\n")
	}
	return b.String()
}

func hasObject(events []inspect.Event, object string) bool {
	for _, ev := range events {
		if ev.Object == object {
			return true
		}
	}
	return false
}

func hasPrefix(events []inspect.Event, prefix string) bool {
	for _, ev := range events {
		if strings.HasPrefix(ev.Object, prefix) {
			return true
		}
	}
	return false
}
