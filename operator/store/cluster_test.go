package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/store"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// realNamespace returns a client of the shared control plane and a fresh
// namespace for one test.
func realNamespace(t *testing.T) (kubernetes.Interface, string) {
	t.Helper()
	c := cluster.Shared(t)
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "store-"}}
	ns, err = client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return client, ns.Name
}

func get(t *testing.T, s *store.Store, bucket, key string) string {
	t.Helper()
	v, found, err := s.Get(context.Background(), bucket, key)
	require.NoError(t, err)
	if !found {
		return "<missing>"
	}
	return string(v)
}

func TestClusterRoundTripAndSharding(t *testing.T) {
	ctx := context.Background()
	client, ns := realNamespace(t)
	opts := store.Options{ShardBytes: 8 << 10, MaxShards: 4}
	s := store.New(client, ns, opts)

	value := strings.Repeat("v", 200)
	for i := range 60 {
		require.NoError(t, s.Put(ctx, "conversations", fmt.Sprintf("%d:%d", -100-i, i), []byte(value), 0))
	}
	require.NoError(t, s.Put(ctx, "chats", "-100", []byte("web"), 0))
	require.NoError(t, s.Flush(ctx))

	cms, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=teleop,teleop.io/bucket=conversations"})
	require.NoError(t, err)
	assert.Len(t, cms.Items, 4, "12 KiB of entries split into 4 shards of 8 KiB")

	reloaded := store.New(client, ns, opts)
	for i := range 60 {
		assert.Equal(t, value, get(t, reloaded, "conversations", fmt.Sprintf("%d:%d", -100-i, i)))
	}
	assert.Equal(t, "web", get(t, reloaded, "chats", "-100"))
}

func TestClusterConflictWithASecondWriterIsMerged(t *testing.T) {
	ctx := context.Background()
	client, ns := realNamespace(t)
	first := store.New(client, ns, store.Options{})
	require.NoError(t, first.Put(ctx, "chats", "1", []byte("one"), 0))
	require.NoError(t, first.Put(ctx, "chats", "2", []byte("two"), 0))
	require.NoError(t, first.Flush(ctx))

	// A second writer (a stale leader, say) loads the bucket and changes it
	// behind the first one's back.
	second := store.New(client, ns, store.Options{})
	require.NoError(t, second.Put(ctx, "chats", "2", []byte("two by second"), 0))
	require.NoError(t, second.Put(ctx, "chats", "3", []byte("three by second"), 0))
	require.NoError(t, second.Delete(ctx, "chats", "1"))
	require.NoError(t, second.Flush(ctx))

	// The first writer's next write meets a stale resourceVersion: it
	// re-reads, takes over the second writer's changes and re-applies its own.
	require.NoError(t, first.Put(ctx, "chats", "2", []byte("two by first"), 0))
	require.NoError(t, first.Put(ctx, "chats", "4", []byte("four by first"), 0))
	require.NoError(t, first.Flush(ctx))

	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "teleop-chats", metav1.GetOptions{})
	require.NoError(t, err)
	fresh := store.New(client, ns, store.Options{})
	want := map[string]string{
		"1": "<missing>",    // deleted by the second writer
		"2": "two by first", // changed by both: the pending change wins
		"3": "three by second",
		"4": "four by first",
	}
	for key, v := range want {
		assert.Equal(t, v, get(t, fresh, "chats", key), "in the cluster: %s", key)
		assert.Equal(t, v, get(t, first, "chats", key), "in the first writer's memory: %s", key)
	}
	assert.Len(t, cm.Data, 3)
}

func TestClusterWriteBehindLandsWithoutFlush(t *testing.T) {
	ctx := context.Background()
	client, ns := realNamespace(t)
	s := store.New(client, ns, store.Options{WriteDelay: 30 * time.Millisecond})
	for i := range 100 {
		require.NoError(t, s.Put(ctx, "updates", fmt.Sprint(i), []byte("handled"), time.Hour))
	}
	require.Eventually(t, func() bool {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "teleop-updates", metav1.GetOptions{})
		return err == nil && len(cm.Data) == 100
	}, 10*time.Second, 20*time.Millisecond)
}
