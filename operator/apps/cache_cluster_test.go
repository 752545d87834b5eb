package apps_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	listers "github.com/teleop/teleop/operator/generated/listers/api/v1alpha1"
	"github.com/teleop/teleop/test/cluster"
)

// countingTransport counts the requests that reach the API server.
type countingTransport struct {
	next     http.RoundTripper
	requests *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	return t.next.RoundTrip(r)
}

// TestCachedReads runs against the real API server with a cache the test
// fills itself (an informer's store, frozen), so that it can be stale on
// purpose: a cached copy saves reads, and a stale one never changes what a
// scale does.
func TestCachedReads(t *testing.T) {
	c := cluster.Shared(t)
	ctx := context.Background()
	cfg := c.RESTConfig()
	var requests atomic.Int64
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, &requests} }
	tele, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	recorder, stop := apps.NewEventRecorder(kube, "teleop-apps-test")
	t.Cleanup(stop)
	ns := c.Namespace(t, "apps-cache-")
	live := apps.New(tele, recorder)
	audit := func(id string) apps.Audit {
		return apps.Audit{Actor: "telegram:5 (@eve)", Command: "/scale", RequestID: id}
	}

	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	synced := true
	cached := apps.NewCached(tele, recorder, apps.Cache{Lister: listers.NewTeleAppLister(store), Namespace: ns, HasSynced: func() bool { return synced }})
	// snapshot puts name's live state in the cache, as the informer last saw it.
	snapshot := func(name string, edit func(*v1alpha1.TeleApp)) {
		app, err := live.Get(ctx, ns, name)
		require.NoError(t, err)
		if edit != nil {
			edit(app)
		}
		require.NoError(t, store.Update(app))
	}
	scaleLive := func(name string, n int32) {
		_, _, err := live.Scale(ctx, ns, name, apps.ReplicaChange{Set: ptr.To(n)}, audit("live-"+name))
		require.NoError(t, err)
	}

	t.Run("list and get read the cache, no request", func(t *testing.T) {
		_, err := live.Create(ctx, ns, "cached", "nginx:1.27", 1, nil, audit("c1"))
		require.NoError(t, err)
		snapshot("cached", nil)
		before := requests.Load()
		list, err := cached.List(ctx, ns)
		require.NoError(t, err)
		require.Len(t, list, 1)
		_, err = cached.Get(ctx, ns, "cached")
		require.NoError(t, err)
		assert.Equal(t, before, requests.Load())
	})

	t.Run("an app not in the cache yet is read live", func(t *testing.T) {
		_, err := live.Create(ctx, ns, "fresh", "nginx:1.27", 1, nil, audit("c2"))
		require.NoError(t, err)
		got, err := cached.Get(ctx, ns, "fresh")
		require.NoError(t, err)
		assert.Equal(t, "fresh", got.Name)
	})

	t.Run("another namespace, or a cache not synced, is read live", func(t *testing.T) {
		other := c.Namespace(t, "apps-cache-other-")
		_, err := live.Create(ctx, other, "elsewhere", "nginx:1.27", 1, nil, audit("c3"))
		require.NoError(t, err)
		list, err := cached.List(ctx, other)
		require.NoError(t, err)
		assert.Len(t, list, 1)
		synced = false
		t.Cleanup(func() { synced = true })
		before := requests.Load()
		_, err = cached.List(ctx, ns)
		require.NoError(t, err)
		assert.Greater(t, requests.Load(), before)
	})

	tests := []struct {
		name string
		// stale edits the cached copy, older than the live object, of the
		// app that request will scale
		stale            func(app *v1alpha1.TeleApp, request string)
		live             int32
		change           apps.ReplicaChange
		wantFrom, wantTo int32
	}{
		{name: "a delta applies to the live count", live: 5, change: apps.ReplicaChange{Delta: 1}, wantFrom: 5, wantTo: 6},
		{name: "a refusal on the stale count is decided again", stale: func(a *v1alpha1.TeleApp, _ string) { a.Spec.Replicas = ptr.To[int32](v1alpha1.MaxReplicas) },
			live: 2, change: apps.ReplicaChange{Delta: 1}, wantFrom: 2, wantTo: 3},
		{name: "a stale 'already applied' is decided again", stale: func(a *v1alpha1.TeleApp, request string) { a.Annotations[apps.AnnotationLastRequestID] = request },
			live: 4, change: apps.ReplicaChange{Delta: -1}, wantFrom: 4, wantTo: 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, request := fmt.Sprintf("stale-%d", i), fmt.Sprintf("scale-%d", i)
			_, err := live.Create(ctx, ns, name, "nginx:1.27", 1, nil, audit("c-"+name))
			require.NoError(t, err)
			snapshot(name, func(app *v1alpha1.TeleApp) {
				if tt.stale != nil {
					tt.stale(app, request)
				}
			})
			scaleLive(name, tt.live)
			from, to, err := cached.Scale(ctx, ns, name, tt.change, audit(request))
			require.NoError(t, err)
			assert.Equal(t, [2]int32{tt.wantFrom, tt.wantTo}, [2]int32{from, to})
			got, err := live.Get(ctx, ns, name)
			require.NoError(t, err)
			assert.Equal(t, tt.wantTo, *got.Spec.Replicas)
		})
	}
}
