package apps

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
)

var alice = Audit{Actor: "telegram:1 (@alice)", Command: "/scale web +2", RequestID: "telegram-update-7"}

type appOption func(*v1alpha1.TeleApp)

func teleApp(name string, opts ...appOption) *v1alpha1.TeleApp {
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](3)},
	}
	for _, o := range opts {
		o(app)
	}
	return app
}

func withReplicas(n *int32) appOption { return func(a *v1alpha1.TeleApp) { a.Spec.Replicas = n } }

func lastRequest(id string) appOption {
	return func(a *v1alpha1.TeleApp) { a.Annotations = map[string]string{AnnotationLastRequestID: id} }
}

func newClient(objects ...runtime.Object) (*Client, *fake.Clientset, *record.FakeRecorder) {
	cs := fake.NewSimpleClientset(objects...)
	events := record.NewFakeRecorder(10)
	return New(cs, events), cs, events
}

func writes(cs *fake.Clientset) []string {
	var verbs []string
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			verbs = append(verbs, a.GetVerb())
		}
	}
	return verbs
}

func drain(events *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name       string
		existing   []runtime.Object
		app, image string
		replicas   int32
		wantErr    func(error) bool
		wantWrites []string
		wantEvents int
	}{
		{name: "new", app: "web", image: "nginx:1.27", replicas: 3, wantWrites: []string{"create"}, wantEvents: 1},
		{name: "redelivered request is a success", existing: []runtime.Object{teleApp("web", lastRequest("telegram-update-7"))},
			app: "web", image: "nginx:1.27", replicas: 3, wantWrites: []string{"create"}},
		{name: "taken by another request", existing: []runtime.Object{teleApp("web", lastRequest("telegram-update-1"))},
			app: "web", image: "nginx:1.27", replicas: 3, wantErr: apierrors.IsAlreadyExists, wantWrites: []string{"create"}},
		{name: "bad name never reaches the cluster", app: "Web", image: "nginx", replicas: 1, wantErr: isErr},
		{name: "bad image never reaches the cluster", app: "web", image: "nginx latest", replicas: 1, wantErr: isErr},
		{name: "too many replicas never reach the cluster", app: "web", image: "nginx", replicas: 101, wantErr: isErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cs, events := newClient(tt.existing...)
			got, err := c.Create(context.Background(), "default", tt.app, tt.image, tt.replicas, []string{"-100", "42", "-100"}, alice)
			assert.Equal(t, tt.wantWrites, writes(cs))
			assert.Len(t, drain(events), tt.wantEvents)
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.True(t, tt.wantErr(err), "unexpected error %v", err)
				return
			}
			require.NoError(t, err)
			stored, err := cs.TeleopV1alpha1().TeleApps("default").Get(context.Background(), tt.app, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, stored, got)
			assert.Equal(t, "telegram-update-7", stored.Annotations[AnnotationLastRequestID])
			if len(tt.existing) == 0 {
				assert.Equal(t, []string{"-100", "42"}, stored.Spec.Notify.Chats)
				assert.Equal(t, "telegram:1 (@alice)", stored.Annotations[AnnotationLastChangedBy])
				assert.Equal(t, "/scale web +2", stored.Annotations[AnnotationLastCommand])
			}
		})
	}
}

func isErr(err error) bool { return err != nil }

func TestScale(t *testing.T) {
	tests := []struct {
		name             string
		existing         *v1alpha1.TeleApp
		change           ReplicaChange
		wantFrom, wantTo int32
		wantErr          error
		wantNotFound     bool
		wantStored       int32
	}{
		{name: "set", existing: teleApp("web"), change: ReplicaChange{Set: ptr.To[int32](5)}, wantFrom: 3, wantTo: 5, wantStored: 5},
		{name: "set to zero", existing: teleApp("web"), change: ReplicaChange{Set: ptr.To[int32](0)}, wantFrom: 3, wantTo: 0, wantStored: 0},
		{name: "up", existing: teleApp("web"), change: ReplicaChange{Delta: 2}, wantFrom: 3, wantTo: 5, wantStored: 5},
		{name: "down", existing: teleApp("web"), change: ReplicaChange{Delta: -3}, wantFrom: 3, wantTo: 0, wantStored: 0},
		{name: "unset replicas count as the default 1", existing: teleApp("web", withReplicas(nil)), change: ReplicaChange{Delta: 1}, wantFrom: 1, wantTo: 2, wantStored: 2},
		{name: "below zero refused", existing: teleApp("web"), change: ReplicaChange{Delta: -4}, wantFrom: 3, wantErr: ErrOutOfRange, wantStored: 3},
		{name: "above 100 refused", existing: teleApp("web"), change: ReplicaChange{Delta: 98}, wantFrom: 3, wantErr: ErrOutOfRange, wantStored: 3},
		{name: "huge set refused", existing: teleApp("web"), change: ReplicaChange{Set: ptr.To[int32](2147483647)}, wantFrom: 3, wantErr: ErrOutOfRange, wantStored: 3},
		{name: "redelivered request not applied again", existing: teleApp("web", lastRequest("telegram-update-7")), change: ReplicaChange{Delta: 2},
			wantFrom: 3, wantTo: 3, wantErr: ErrAlreadyApplied, wantStored: 3},
		{name: "missing app", change: ReplicaChange{Delta: 1}, wantNotFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objects []runtime.Object
			if tt.existing != nil {
				objects = append(objects, tt.existing)
			}
			c, cs, events := newClient(objects...)
			from, to, err := c.Scale(context.Background(), "default", "web", tt.change, alice)
			switch {
			case tt.wantNotFound:
				assert.True(t, apierrors.IsNotFound(err), "want NotFound, got %v", err)
				assert.Empty(t, writes(cs))
				return
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, writes(cs))
				assert.Empty(t, drain(events))
			default:
				require.NoError(t, err)
				assert.Equal(t, []string{"update"}, writes(cs))
				assert.Equal(t, []string{"Normal ScaledFromChat telegram:1 (@alice) ran \"/scale web +2\": replicas " +
					itoa(tt.wantFrom) + " → " + itoa(tt.wantTo)}, drain(events))
			}
			assert.Equal(t, tt.wantFrom, from)
			if tt.wantErr == nil || tt.wantErr == ErrAlreadyApplied {
				assert.Equal(t, tt.wantTo, to)
			}
			stored, err := cs.TeleopV1alpha1().TeleApps("default").Get(context.Background(), "web", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, tt.wantStored, *stored.Spec.Replicas)
		})
	}
}

func itoa(n int32) string { return fmt.Sprint(n) }

// TestScaleRetriesOnConflictWithAFreshRead: someone else scales between our
// read and our write; the delta applies to their count, not to the stale one.
func TestScaleRetriesOnConflictWithAFreshRead(t *testing.T) {
	c, cs, _ := newClient(teleApp("web"))
	conflicted := false
	cs.PrependReactor("update", "teleapps", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if conflicted {
			return false, nil, nil
		}
		conflicted = true
		theirs := teleApp("web", withReplicas(ptr.To[int32](7)))
		require.NoError(t, cs.Tracker().Update(v1alpha1.SchemeGroupVersion.WithResource("teleapps"), theirs, "default"))
		return true, nil, apierrors.NewConflict(v1alpha1.Resource("teleapps"), "web", fmt.Errorf("changed"))
	})
	from, to, err := c.Scale(context.Background(), "default", "web", ReplicaChange{Delta: 2}, alice)
	require.NoError(t, err)
	assert.Equal(t, int32(7), from)
	assert.Equal(t, int32(9), to)
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name         string
		existing     *v1alpha1.TeleApp
		wantNotFound bool
		wantWrites   []string
		wantEvents   int
	}{
		{name: "deleted with audit written first", existing: teleApp("web"), wantWrites: []string{"update", "delete"}, wantEvents: 1},
		{name: "missing", wantNotFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objects []runtime.Object
			if tt.existing != nil {
				objects = append(objects, tt.existing)
			}
			c, cs, events := newClient(objects...)
			err := c.Delete(context.Background(), "default", "web", alice)
			assert.Equal(t, tt.wantWrites, writes(cs))
			assert.Len(t, drain(events), tt.wantEvents)
			if tt.wantNotFound {
				assert.True(t, apierrors.IsNotFound(err), "want NotFound, got %v", err)
				return
			}
			require.NoError(t, err)
			for _, a := range cs.Actions() {
				if u, ok := a.(k8stesting.UpdateAction); ok {
					assert.Equal(t, "telegram-update-7", u.GetObject().(*v1alpha1.TeleApp).Annotations[AnnotationLastRequestID])
				}
			}
			_, err = cs.TeleopV1alpha1().TeleApps("default").Get(context.Background(), "web", metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err))
		})
	}
}

func TestDeleteRedeliveredWhileFinalizing(t *testing.T) {
	finalizing := teleApp("web", lastRequest("telegram-update-7"))
	finalizing.DeletionTimestamp = ptr.To(metav1.Now())
	finalizing.Finalizers = []string{"teleop.io/announce"}
	c, cs, events := newClient(finalizing)
	require.NoError(t, c.Delete(context.Background(), "default", "web", alice))
	assert.Empty(t, writes(cs))
	assert.Empty(t, drain(events))
}

func TestListSortedByName(t *testing.T) {
	c, _, _ := newClient(teleApp("web"), teleApp("api"), teleApp("db"))
	got, err := c.List(context.Background(), "default")
	require.NoError(t, err)
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	assert.Equal(t, []string{"api", "db", "web"}, names)
}
