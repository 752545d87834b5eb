package operator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// TestNewClientsSpeakProtobufForBuiltInKinds checks what each client asks
// the API server for: protobuf for built-in kinds, JSON for TeleApps.
func TestNewClientsSpeakProtobufForBuiltInKinds(t *testing.T) {
	var mu sync.Mutex
	accepted := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accepted[r.URL.Path] = r.Header.Get("Accept")
		mu.Unlock()
		http.NotFound(w, r)
	}))
	defer srv.Close()
	clients, err := NewClients(&rest.Config{Host: srv.URL}, Options{})
	require.NoError(t, err)
	ctx := context.Background()

	_, _ = clients.Kube.CoreV1().Pods("ns").Get(ctx, "pod", metav1.GetOptions{})
	_, _ = clients.Kube.AppsV1().Deployments("ns").Get(ctx, "web", metav1.GetOptions{})
	_, _ = clients.Events.CoreV1().Events("ns").Get(ctx, "event", metav1.GetOptions{})
	_, _ = clients.Tele.TeleopV1alpha1().TeleApps("ns").Get(ctx, "web", metav1.GetOptions{})

	mu.Lock()
	defer mu.Unlock()
	protobuf := "application/vnd.kubernetes.protobuf,application/json"
	assert.Equal(t, map[string]string{
		"/api/v1/namespaces/ns/pods/pod":                      protobuf,
		"/apis/apps/v1/namespaces/ns/deployments/web":         protobuf,
		"/api/v1/namespaces/ns/events/event":                  protobuf,
		"/apis/teleop.io/v1alpha1/namespaces/ns/teleapps/web": "application/json, */*",
	}, accepted)
}

// TestOwnedInformersKeepNoNamespaceIndex checks that the caches of what
// teleop creates index nothing the controller does not read by: every
// index holds an entry per object and costs a lookup per change.
func TestOwnedInformersKeepNoNamespaceIndex(t *testing.T) {
	factory := newOwnedInformers(k8sfake.NewClientset(), "", 0)
	informers := map[string]cache.SharedIndexInformer{
		"Deployments": factory.Apps().V1().Deployments().Informer(),
		"Services":    factory.Core().V1().Services().Informer(),
		"Pods":        factory.Core().V1().Pods().Informer(),
	}
	for kind, informer := range informers {
		assert.Empty(t, informer.GetIndexer().GetIndexers(), kind)
	}
}
