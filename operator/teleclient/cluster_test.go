package teleclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/teleclient"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

func newClientset(t *testing.T) (versioned.Interface, string) {
	t.Helper()
	c := cluster.Shared(t)
	client, err := teleclient.NewClientset(c.RESTConfig())
	require.NoError(t, err)
	return client, c.Namespace(t, "teleclient-")
}

// TestClientsetOnTheAPIServer reads and writes TeleApps on the real API
// server with the clientset and the writes that do not read back: objects,
// lists, watch events and the API server's errors decode as with the
// generated clientset.
func TestClientsetOnTheAPIServer(t *testing.T) {
	client, ns := newClientset(t)
	apps := client.TeleopV1alpha1().TeleApps(ns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := apps.Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	defer w.Stop()

	replicas := int32(2)
	created, err := apps.Create(ctx, &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: &replicas},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.27", created.Spec.Image)
	assertEvent(t, w, watch.Added, func(app *v1alpha1.TeleApp) bool { return app.Spec.Image == "nginx:1.27" })

	withStatus := created.DeepCopy()
	withStatus.Status = v1alpha1.TeleAppStatus{Phase: v1alpha1.PhaseReady, Message: "2/2 replicas ready", ReadyReplicas: 2}
	require.NoError(t, teleclient.UpdateStatus(ctx, client, withStatus, metav1.UpdateOptions{}))
	assertEvent(t, w, watch.Modified, func(app *v1alpha1.TeleApp) bool { return app.Status.Phase == v1alpha1.PhaseReady })

	err = teleclient.UpdateStatus(ctx, client, withStatus, metav1.UpdateOptions{})
	assert.True(t, apierrors.IsConflict(err), "a status write on a stale resourceVersion: %v", err)

	patch := []byte(`{"metadata":{"annotations":{"teleop.io/test":"patched"}}}`)
	require.NoError(t, teleclient.Patch(ctx, client, ns, "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "teleclient-test"}))
	assertEvent(t, w, watch.Modified, func(app *v1alpha1.TeleApp) bool { return app.Annotations["teleop.io/test"] == "patched" })

	got, err := apps.Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, v1alpha1.PhaseReady, got.Status.Phase)
	assert.Equal(t, int32(2), *got.Spec.Replicas)
	assert.Contains(t, managers(got), "teleclient-test")
	list, err := apps.List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, got.ResourceVersion, list.Items[0].ResourceVersion)

	err = teleclient.Patch(ctx, client, ns, "gone", types.MergePatchType, patch, metav1.PatchOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a patch of a missing TeleApp: %v", err)
	_, err = apps.Get(ctx, "gone", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a read of a missing TeleApp: %v", err)
}

func assertEvent(t *testing.T, w watch.Interface, want watch.EventType, ok func(*v1alpha1.TeleApp) bool) {
	t.Helper()
	select {
	case e := <-w.ResultChan():
		app, isApp := e.Object.(*v1alpha1.TeleApp)
		require.True(t, isApp, "a %s event of %T", e.Type, e.Object)
		assert.Equal(t, want, e.Type)
		assert.True(t, ok(app), "the %s event's TeleApp: %+v", e.Type, app)
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s event", want)
	}
}

func managers(app *v1alpha1.TeleApp) []string {
	var names []string
	for _, f := range app.ManagedFields {
		names = append(names, f.Manager)
	}
	return names
}
