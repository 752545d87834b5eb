package commands

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// trackedRollouts records the rollouts the Router hands over to be followed.
type trackedRollouts struct {
	mu       sync.Mutex
	rollouts []progress.Rollout
}

func (p *trackedRollouts) Track(_ context.Context, _ int64, _ int, ro progress.Rollout) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rollouts = append(p.rollouts, ro)
}

// first waits for the first rollout handed over (Track runs in a goroutine).
func (p *trackedRollouts) first(t *testing.T) progress.Rollout {
	t.Helper()
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.rollouts) > 0
	}, 10*time.Second, 10*time.Millisecond, "no rollout was followed")
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rollouts[0]
}

func withUID(uid types.UID) appOption { return func(a *v1alpha1.TeleApp) { a.UID = uid } }

// deployWithButton deploys a broken image to the world's web and returns the
// [Roll back] button its rollout would offer when stuck.
func deployWithButton(t *testing.T, w *world) string {
	t.Helper()
	tracked := &trackedRollouts{}
	w.router.cfg.Progress = tracked
	w.router.HandleUpdate(context.Background(), message("/deploy web nginx:broken"))
	undo := tracked.first(t).Undo
	require.NotNil(t, undo, "no [Roll back] button")
	assert.Equal(t, "↩️ Roll back", undo.Text)
	assert.LessOrEqual(t, len(undo.Data), 64, "Telegram's limit on callback data")
	return undo.Data
}

func (w *world) image(t *testing.T) string {
	t.Helper()
	app, err := w.teleop.TeleopV1alpha1().TeleApps("default").Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	return app.Spec.Image
}

func lastOf(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[len(list)-1]
}

// TestRollBackButton: the button names the app by UID and the revision that
// ran before the deploy; a press rolls back as /rollback would, for the user
// who pressed it, and a second press changes nothing.
func TestRollBackButton(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, teleApp("default", "web", withUID("6f1c2a9e-7d3b-4c55-9a0e-1b2c3d4e5f60"), withHistory("nginx:1.26", "nginx:1.27")))
	data := deployWithButton(t, w)
	assert.Equal(t, "rb:6f1c2a9e-7d3b-4c55-9a0e-1b2c3d4e5f60:2", data)
	require.Equal(t, "nginx:broken", w.image(t))

	tests := []struct {
		name, want, wantImage string
		user                  int64
	}{
		{name: "a viewer's press", user: viewer, wantImage: "nginx:broken",
			want: "⛔ You may not patch teleapps in namespace default: ask an admin for teleop-editor."},
		{name: "the editor's press", user: editor, wantImage: "nginx:1.27",
			want: "↩️ Rolling <b>web</b> in <b>default</b> back to <code>nginx:1.27</code> (revision 2; was <code>nginx:broken</code>)…"},
		{name: "a second press", user: editor, wantImage: "nginx:1.27",
			want: "<b>web</b> already runs <code>nginx:1.27</code> (revision 2) in <b>default</b>; nothing changed."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.router.HandleUpdate(ctx, press(data, from(tt.user)))
			assert.Equal(t, tt.want, lastOf(w.messenger.texts()))
			assert.Equal(t, "", lastOf(w.messenger.answers), "the press is answered without a note")
			assert.Equal(t, tt.wantImage, w.image(t))
		})
	}
}

// TestRollBackButtonOfAReplacedApp: after web is deleted and created anew,
// a button of the old web changes nothing and says so, whether the cache
// has seen the new one yet or not.
func TestRollBackButtonOfAReplacedApp(t *testing.T) {
	ctx := context.Background()
	old := teleApp("default", "web", withUID("uid-old"), withHistory("nginx:1.26", "nginx:1.27"))
	w := newWorld(t, old)
	data := deployWithButton(t, w)
	require.NoError(t, w.teleop.TeleopV1alpha1().TeleApps("default").Delete(ctx, "web", metav1.DeleteOptions{}))
	_, err := w.teleop.TeleopV1alpha1().TeleApps("default").Create(ctx,
		teleApp("default", "web", withUID("uid-new"), withHistory("nginx:1.27", "nginx:broken")), metav1.CreateOptions{})
	require.NoError(t, err)

	// The cache behind the API server still holds the old web: the write
	// finds the new one and refuses.
	stale := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{UIDIndex: IndexByUID})
	require.NoError(t, stale.Add(old))
	behind := *w.router
	behind.cfg.Index = stale
	writes := len(w.teleAppWrites())
	behind.HandleUpdate(ctx, press(data))
	assert.Equal(t, appGone, lastOf(w.messenger.texts()))
	assert.Len(t, w.teleAppWrites(), writes, "the new web was written")

	// The cache up to date: the press finds nothing and says so.
	require.Eventually(t, func() bool {
		found, err := w.router.cfg.Index.ByIndex(UIDIndex, "uid-old")
		return err == nil && len(found) == 0
	}, 10*time.Second, 10*time.Millisecond, "the informer never saw the old web go")
	texts := len(w.messenger.texts())
	w.router.HandleUpdate(ctx, press(data))
	assert.Equal(t, appGone, lastOf(w.messenger.answers))
	assert.Len(t, w.messenger.texts(), texts, "a press of nothing is answered, not replied to")
	assert.Len(t, w.teleAppWrites(), writes)
	assert.Equal(t, "nginx:broken", w.image(t), "the new web was rolled back")
}

func TestRollBackButtonData(t *testing.T) {
	tests := []struct {
		data     string
		uid      string
		revision int64
		ok       bool
	}{
		{data: "rb:6f1c2a9e-7d3b-4c55-9a0e-1b2c3d4e5f60:2", uid: "6f1c2a9e-7d3b-4c55-9a0e-1b2c3d4e5f60", revision: 2, ok: true},
		{data: "rb:u:0", uid: "u", ok: true},
		{data: "rb:17"}, // a button of the store teleop kept before: expired
		{data: "rb::3"},
		{data: "rb:u:"},
		{data: "rb:u:-1"},
		{data: "rb:u:+1"},
		{data: "rb:u:1x"},
		{data: "cv:u:1"},
		{data: "rb:u:99999999999999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			uid, revision, ok := parseUndo(tt.data)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.uid, uid)
				assert.Equal(t, tt.revision, revision)
			}
		})
	}
}
