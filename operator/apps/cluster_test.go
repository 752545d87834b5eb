package apps_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// TestClusterLifecycle runs every write against the real API server: the CRD
// schema, the status subresource and Events are real here.
func TestClusterLifecycle(t *testing.T) {
	c := cluster.Shared(t)
	ctx := context.Background()
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	teleop, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := c.Namespace(t, "apps-")
	recorder, stop := apps.NewEventRecorder(kube, "teleop-apps-test")
	t.Cleanup(stop)
	client := apps.New(teleop, recorder)
	audit := func(cmd, id string) apps.Audit {
		return apps.Audit{Actor: "telegram:5 (@eve)", Command: cmd, RequestID: id}
	}

	created, err := client.Create(ctx, ns, "web", "nginx:1.27", 2, []string{"42"}, audit("/create web nginx:1.27 2", "r1"))
	require.NoError(t, err)
	again, err := client.Create(ctx, ns, "web", "nginx:1.27", 2, []string{"42"}, audit("/create web nginx:1.27 2", "r1"))
	require.NoError(t, err, "a redelivered create is a success")
	assert.Equal(t, created.UID, again.UID)
	_, err = client.Create(ctx, ns, "web", "nginx:1.27", 2, nil, audit("/create web nginx:1.27 2", "r2"))
	assert.True(t, apierrors.IsAlreadyExists(err), "want AlreadyExists, got %v", err)

	from, to, err := client.Scale(ctx, ns, "web", apps.ReplicaChange{Delta: 3}, audit("/scale web +3", "r3"))
	require.NoError(t, err)
	assert.Equal(t, [2]int32{2, 5}, [2]int32{from, to})
	_, _, err = client.Scale(ctx, ns, "web", apps.ReplicaChange{Delta: 3}, audit("/scale web +3", "r3"))
	require.ErrorIs(t, err, apps.ErrAlreadyApplied)
	_, _, err = client.Scale(ctx, ns, "web", apps.ReplicaChange{Delta: 96}, audit("/scale web +96", "r4"))
	require.ErrorIs(t, err, apps.ErrOutOfRange)
	got, err := client.Get(ctx, ns, "web")
	require.NoError(t, err)
	assert.Equal(t, int32(5), *got.Spec.Replicas)
	assert.Equal(t, "r3", got.Annotations[apps.AnnotationLastRequestID])

	require.NoError(t, client.Delete(ctx, ns, "web", audit("/delete web", "r5")))
	require.Eventually(t, func() bool {
		_, err := client.Get(ctx, ns, "web")
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond)
	_, _, err = client.Scale(ctx, ns, "web", apps.ReplicaChange{Delta: 1}, audit("/scale web +1", "r6"))
	assert.True(t, apierrors.IsNotFound(err), "want NotFound, got %v", err)

	require.Eventually(t, func() bool {
		events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,involvedObject.kind=TeleApp"})
		if err != nil {
			return false
		}
		reasons := map[string]int{}
		for _, e := range events.Items {
			reasons[e.Reason] += int(e.Count)
		}
		return assert.ObjectsAreEqual(map[string]int{apps.ReasonCreatedFromChat: 1, apps.ReasonScaledFromChat: 1, apps.ReasonDeletedFromChat: 1}, reasons)
	}, 30*time.Second, 200*time.Millisecond, "one Event per change")
}
