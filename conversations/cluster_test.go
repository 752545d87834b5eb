package conversations

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// clusterWorld is an engine on the real control plane: the conversations'
// ConfigMaps, the TeleChats, the TeleApps and the SubjectAccessReviews are
// the API server's.
// alice is an admin; mallory has no RoleBinding at all.
type clusterWorld struct {
	t         *testing.T
	kube      kubernetes.Interface
	teleop    versioned.Interface
	namespace string
	bot       *recorder
	engine    *Engine
	updates   int64
}

func newClusterWorld(t *testing.T) *clusterWorld {
	t.Helper()
	c := cluster.Shared(t)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	teleop, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	w := &clusterWorld{t: t, kube: kube, teleop: teleop, namespace: c.Namespace(t, "conv-"), bot: newRecorder()}
	w.restart()
	return w
}

// restart builds a new engine, as a restarted teleop or a new leader does.
func (w *clusterWorld) restart() {
	events, stop := apps.NewEventRecorder(w.kube, "teleop-test")
	w.t.Cleanup(stop)
	w.engine = NewEngine(Config{
		Messenger:         w.bot,
		Apps:              apps.New(w.teleop, events),
		Authorizer:        access.New(w.kube, []string{identity.User(alice)}),
		Namespaces:        startChats(w.t, w.teleop, w.namespace),
		ClusterNamespaces: cachedNamespaces(w.t, w.kube),
		ConfigMaps:        w.kube.CoreV1().ConfigMaps(w.namespace),
		Logger:            slog.New(slog.DiscardHandler),
	})
}

func (w *clusterWorld) update(user int64) bot.Update {
	w.updates++
	return bot.Update{ID: w.updates, ChatID: group, UserID: user, Username: usernameOf(user)}
}

func (w *clusterWorld) say(user int64, text string) string {
	before := w.bot.sends()
	u := w.update(user)
	u.Text = text
	_, err := w.engine.Handle(context.Background(), u)
	require.NoError(w.t, err)
	return joined(w.bot.since(before))
}

func (w *clusterWorld) press(user int64, label string) string {
	id, b, ok := w.bot.button(group, label, user)
	require.True(w.t, ok, "no button %q", label)
	before := w.bot.sends()
	u := w.update(user)
	u.MessageID, u.Callback = id, &bot.Callback{ID: "cb", Data: b.Data}
	_, err := w.engine.Handle(context.Background(), u)
	require.NoError(w.t, err)
	return joined(w.bot.since(before))
}

func TestClusterCreateSurvivesRestartsAndScales(t *testing.T) {
	w := newClusterWorld(t)
	ctx := context.Background()
	start := w.update(alice)
	require.NoError(t, w.engine.Start(ctx, "create", start, map[string]string{"namespace": w.namespace}))
	w.say(alice, "web")
	w.restart()
	assert.Contains(t, w.say(alice, "nginx:1.27"), "How many replicas of <b>web</b>?", "the new engine continues at the image step")
	w.restart()
	assert.Contains(t, w.press(alice, "2"), "Create <b>web</b>")
	assert.Contains(t, w.press(alice, "✅ Create"), "✅ Created <b>web</b>")

	app, err := w.teleop.TeleopV1alpha1().TeleApps(w.namespace).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.27", app.Spec.Image)
	assert.Equal(t, int32(2), ptr.Deref(app.Spec.Replicas, 0))
	assert.Contains(t, app.Annotations["teleop.io/last-changed-by"], "telegram:11 (@alice)")

	require.NoError(t, w.engine.Start(ctx, "scale", w.update(alice), map[string]string{"namespace": w.namespace}))
	w.press(alice, "web")
	assert.Contains(t, w.press(alice, "3"), "<b>web</b> scaled 2 → 3")

	cms, err := w.kube.CoreV1().ConfigMaps(w.namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelFlow})
	require.NoError(t, err)
	assert.Empty(t, cms.Items, "finished conversations leave nothing behind")
}

func TestClusterUserWithoutRoleBindingIsRefused(t *testing.T) {
	w := newClusterWorld(t)
	ctx := context.Background()
	require.NoError(t, w.engine.Start(ctx, "create", w.update(mallory), map[string]string{"namespace": w.namespace}))
	assert.Contains(t, joined(w.bot.since(0)), "⛔ You may not create teleapps in namespace "+w.namespace+": ask an admin for teleop-editor.")
	_, open, err := w.engine.Open(ctx, group, mallory)
	require.NoError(t, err)
	assert.False(t, open)
}

func TestClusterTimeoutIsToldOnce(t *testing.T) {
	w := newClusterWorld(t)
	ctx := context.Background()
	clock := &fakeClock{now: time.Now()}
	w.engine.cfg.Now = clock.Now
	require.NoError(t, w.engine.Start(ctx, "delete", w.update(alice), map[string]string{"namespace": w.namespace, "name": "web"}))
	clock.Advance(11 * time.Minute)
	before := w.bot.sends()
	ended, err := w.engine.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, ended)
	assert.Contains(t, joined(w.bot.since(before)), "timed out after 10 minutes")
	ended, err = w.engine.Sweep(ctx)
	require.NoError(t, err)
	assert.Zero(t, ended)
}
