package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNamespace = "teleop-system"

// clock is a settable clock for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func configMap(t *testing.T, client kubernetes.Interface, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(testNamespace).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return cm
}

// writes counts the ConfigMap creates and updates the client has seen.
func writes(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetResource().Resource == "configmaps" && (a.GetVerb() == "create" || a.GetVerb() == "update") {
			n++
		}
	}
	return n
}

func TestPutGetDeleteSurviveANewStore(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	s := New(client, testNamespace, Options{})

	require.NoError(t, s.Put(ctx, "chats", "-100123", []byte("web"), 0))
	require.NoError(t, s.Put(ctx, "chats", "42", []byte("default"), 0))
	require.NoError(t, s.Put(ctx, "chats", "gone", []byte("x"), 0))
	require.NoError(t, s.Delete(ctx, "chats", "gone"))
	require.NoError(t, s.Put(ctx, "conversations", "1:2", []byte{0xff, 0x00, 'b'}, 0))
	require.NoError(t, s.Flush(ctx))

	cm := configMap(t, client, "teleop-chats")
	assert.Equal(t, map[string]string{"app.kubernetes.io/managed-by": "teleop", "teleop.io/bucket": "chats"}, cm.Labels)
	assert.Equal(t, "1", cm.Annotations[AnnotationShards])
	assert.Len(t, cm.Data, 2, "deleted key is not written")

	reloaded := New(client, testNamespace, Options{})
	for _, tc := range []struct {
		bucket, key string
		want        []byte
		found       bool
	}{
		{"chats", "-100123", []byte("web"), true},
		{"chats", "42", []byte("default"), true},
		{"chats", "gone", nil, false},
		{"conversations", "1:2", []byte{0xff, 0x00, 'b'}, true},
		{"updates", "7", nil, false},
	} {
		got, found, err := reloaded.Get(ctx, tc.bucket, tc.key)
		require.NoError(t, err)
		assert.Equal(t, tc.found, found, "%s/%s", tc.bucket, tc.key)
		assert.Equal(t, tc.want, got, "%s/%s", tc.bucket, tc.key)
	}
}

func TestExpiredEntriesAreHiddenAndDroppedOnWrite(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	clk := newClock()
	s := New(client, testNamespace, Options{Now: clk.Now})

	require.NoError(t, s.Put(ctx, "updates", "1", []byte("done"), time.Minute))
	require.NoError(t, s.Put(ctx, "updates", "2", []byte("done"), time.Hour))
	require.NoError(t, s.Flush(ctx))
	assert.Len(t, configMap(t, client, "teleop-updates").Data, 2)

	clk.Advance(2 * time.Minute)
	_, found, err := s.Get(ctx, "updates", "1")
	require.NoError(t, err)
	assert.False(t, found, "expired entry is not returned")

	require.NoError(t, s.Put(ctx, "updates", "3", []byte("done"), time.Hour))
	require.NoError(t, s.Flush(ctx))
	data := configMap(t, client, "teleop-updates").Data
	assert.NotContains(t, data, "1", "expired entry dropped on write")
	assert.Contains(t, data, "2")
	assert.Contains(t, data, "3")

	clk.Advance(2 * time.Hour)
	_, found, err = New(client, testNamespace, Options{Now: clk.Now}).Get(ctx, "updates", "3")
	require.NoError(t, err)
	assert.False(t, found, "a new store does not load expired entries")
}

func TestWritesAreCoalesced(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	// A window far longer than 500 in-memory puts take, even under -race.
	s := New(client, testNamespace, Options{WriteDelay: time.Second})

	for i := range 500 {
		require.NoError(t, s.Put(ctx, "conversations", fmt.Sprint(i), []byte("state"), 0))
	}
	require.Eventually(t, func() bool {
		cm, err := client.CoreV1().ConfigMaps(testNamespace).Get(ctx, "teleop-conversations", metav1.GetOptions{})
		return err == nil && len(cm.Data) == 500
	}, 5*time.Second, 10*time.Millisecond, "write-behind writes without Flush")
	assert.Equal(t, 1, writes(client), "500 puts within the window make one write")
}

func TestConcurrentFlushesShareWrites(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	s := New(client, testNamespace, Options{})

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			assert.NoError(t, s.Put(ctx, "conversations", fmt.Sprint(i), []byte("state"), 0))
			assert.NoError(t, s.Flush(ctx))
		})
	}
	wg.Wait()
	assert.Len(t, configMap(t, client, "teleop-conversations").Data, 200)
	assert.Less(t, writes(client), 50, "durable puts are group-committed")
	t.Logf("200 durable puts from 200 goroutines: %d writes in %d rounds", writes(client), s.rounds)
}

func TestBucketSplitsIntoShardsAndReloads(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	opts := Options{ShardBytes: 4 << 10, MaxShards: 8}
	s := New(client, testNamespace, opts)

	value := []byte(strings.Repeat("v", 100))
	for i := range 120 {
		require.NoError(t, s.Put(ctx, "conversations", fmt.Sprintf("chat:%d", i), value, 0))
	}
	require.NoError(t, s.Flush(ctx))

	first := configMap(t, client, "teleop-conversations")
	shards := first.Annotations[AnnotationShards]
	assert.Equal(t, "8", shards, "~15 KiB in 4 KiB shards at 3/4 fill needs 8 shards")
	total := 0
	for i := range 8 {
		cm := configMap(t, client, shardName("conversations", i))
		total += len(cm.Data)
		assert.Equal(t, "conversations", cm.Labels[LabelBucket])
		assert.Less(t, cm.Size(), 2*opts.ShardBytes, "shard %d stays bounded", i)
	}
	assert.Equal(t, 120, total, "every entry is in exactly one shard")

	reloaded := New(client, testNamespace, opts)
	for i := range 120 {
		got, found, err := reloaded.Get(ctx, "conversations", fmt.Sprintf("chat:%d", i))
		require.NoError(t, err)
		require.True(t, found, "chat:%d", i)
		assert.Equal(t, value, got)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	opts := Options{ShardBytes: 1 << 10, MaxShards: 1, MaxEntries: 3, MaxValueBytes: 64}
	for _, tc := range []struct {
		name        string
		bucket, key string
		value       []byte
		wantErr     error
	}{
		{"bucket with capitals", "Chats", "1", []byte("x"), ErrInvalidBucket},
		{"bucket with a slash", "a/b", "1", []byte("x"), ErrInvalidBucket},
		{"empty bucket", "", "1", []byte("x"), ErrInvalidBucket},
		{"long bucket", strings.Repeat("b", 41), "1", []byte("x"), ErrInvalidBucket},
		{"empty key", "chats", "", []byte("x"), ErrInvalidKey},
		{"key too long once encoded", "chats", strings.Repeat(":", 90), []byte("x"), ErrInvalidKey},
		{"value too large", "chats", "1", make([]byte, 65), ErrValueTooLarge},
		{"fourth entry", "chats", "4", []byte("x"), ErrBucketFull},
		{"value at the limit is accepted", "chats", "1", []byte(strings.Repeat("x", 64)), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			s := New(client, testNamespace, opts)
			for _, k := range []string{"1", "2", "3"} {
				require.NoError(t, s.Put(ctx, "chats", k, []byte("seed"), 0))
			}
			require.NoError(t, s.Flush(ctx))
			before := writes(client)

			err := s.Put(ctx, tc.bucket, tc.key, tc.value, 0)
			if tc.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			require.NoError(t, s.Flush(ctx))
			assert.Equal(t, before, writes(client), "nothing written")
			for key, want := range map[string]string{"1": "seed", "2": "seed", "3": "seed", "4": ""} {
				got, _, err := s.Get(ctx, "chats", key)
				require.NoError(t, err)
				assert.Equal(t, want, string(got), "chats/%s unchanged", key)
			}
		})
	}
}

func TestBucketFullRefusesBytesBeyondBound(t *testing.T) {
	ctx := context.Background()
	s := New(fake.NewClientset(), testNamespace, Options{ShardBytes: 1 << 10, MaxShards: 1, MaxValueBytes: 1 << 10})
	big := []byte(strings.Repeat("x", 500))
	require.NoError(t, s.Put(ctx, "chats", "a", big, 0))
	require.ErrorIs(t, s.Put(ctx, "chats", "b", big, 0), ErrBucketFull, "1 KiB × 3/4 holds one 500-byte value")
	_, found, err := s.Get(ctx, "chats", "b")
	require.NoError(t, err)
	assert.False(t, found)
}

func TestFullBucketMakesRoomByDroppingExpired(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := New(fake.NewClientset(), testNamespace, Options{MaxEntries: 2, Now: clk.Now})
	require.NoError(t, s.Put(ctx, "updates", "1", []byte("x"), time.Second))
	require.NoError(t, s.Put(ctx, "updates", "2", []byte("x"), 0))
	require.ErrorIs(t, s.Put(ctx, "updates", "3", []byte("x"), 0), ErrBucketFull)
	clk.Advance(time.Minute)
	require.NoError(t, s.Put(ctx, "updates", "3", []byte("x"), 0))
}

func TestFailedWriteIsReportedAndRetried(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	var fail sync.Mutex
	failing := true
	client.PrependReactor("create", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		fail.Lock()
		defer fail.Unlock()
		if failing {
			return true, nil, fmt.Errorf("etcd is down")
		}
		return false, nil, nil
	})
	s := New(client, testNamespace, Options{})
	require.NoError(t, s.Put(ctx, "chats", "1", []byte("web"), 0))
	err := s.Flush(ctx)
	require.ErrorContains(t, err, "etcd is down")

	fail.Lock()
	failing = false
	fail.Unlock()
	require.NoError(t, s.Flush(ctx), "the pending change is written on the next round")
	assert.Contains(t, configMap(t, client, "teleop-chats").Data, "1")
}

func TestKeysAreEncodedReversibly(t *testing.T) {
	for _, key := range []string{"1:2", "-100123:42", "a.b_c", "ünï", "_", "x y/z"} {
		enc := encodeKey(key)
		assert.Regexp(t, `^[-_a-zA-Z0-9]+$`, enc)
		dec, ok := decodeKey(enc)
		assert.True(t, ok)
		assert.Equal(t, key, dec)
	}
	for _, bad := range []string{"_", "_4", "_ZZ"} {
		_, ok := decodeKey(bad)
		assert.False(t, ok, bad)
	}
}

func TestRangeVisitsUnexpiredEntries(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := New(fake.NewClientset(), testNamespace, Options{Now: clk.Now})
	require.NoError(t, s.Put(ctx, "conversations", "1:1", []byte("a"), 0))
	require.NoError(t, s.Put(ctx, "conversations", "1:2", []byte("b"), time.Second))
	require.NoError(t, s.Put(ctx, "conversations", "2:1", []byte("c"), time.Hour))
	clk.Advance(time.Minute)

	seen := map[string]string{}
	require.NoError(t, s.Range(ctx, "conversations", func(key string, value []byte) bool {
		seen[key] = string(value)
		return true
	}))
	assert.Equal(t, map[string]string{"1:1": "a", "2:1": "c"}, seen)

	visits := 0
	require.NoError(t, s.Range(ctx, "conversations", func(string, []byte) bool { visits++; return false }))
	assert.Equal(t, 1, visits, "Range stops when fn returns false")
}
