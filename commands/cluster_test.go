package commands

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/conversations"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/chats"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/inspect"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// clusterWorld is a Router over the real control plane, with the chat roles
// of deploy/rbac installed, a namespace of its own, and the real
// conversations engine keeping its state in that namespace.
type clusterWorld struct {
	router    *Router
	messenger *recordingMessenger
	c         *cluster.Cluster
	kube      kubernetes.Interface
	teleop    versioned.Interface
	access    *access.Authorizer
	namespace string
}

func newClusterWorld(t *testing.T) *clusterWorld {
	c := cluster.Shared(t)
	ctx := context.Background()
	_, err := c.Kubectl(ctx, "apply", "-f", filepath.Join(cluster.RepoRoot(), "deploy", "rbac", "chat-roles.yaml"))
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	teleop, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	namespace := c.Namespace(t, "chat-")

	recorder, stop := apps.NewEventRecorder(kube, "teleop-commands-test")
	t.Cleanup(stop)
	namespaces, err := chats.Start(t.Context(), teleop, namespace)
	require.NoError(t, err)
	require.NoError(t, namespaces.Set(ctx, chatID, namespace))
	appsClient := apps.New(teleop, recorder)
	authorizer := access.New(kube, nil)
	messenger := &recordingMessenger{}
	engine := conversations.NewEngine(conversations.Config{
		Messenger: messenger, Apps: appsClient, Authorizer: authorizer, Namespaces: namespaces,
		ConfigMaps: kube.CoreV1().ConfigMaps(namespace), Inspect: inspect.New(kube),
	})
	router, err := NewRouter(Config{
		BotName:       botName,
		Index:         startIndex(t, teleop),
		Apps:          appsClient,
		Access:        authorizer,
		Namespaces:    namespaces,
		Conversations: engine,
		Messenger:     messenger,
		Inspect:       inspect.New(kube),
	})
	require.NoError(t, err)
	return &clusterWorld{router: router, messenger: messenger, c: c, kube: kube, teleop: teleop, access: authorizer, namespace: namespace}
}

// say sends text as user and returns the bot's one reply.
func (cw *clusterWorld) say(t *testing.T, u int64, text string, opts ...updateOption) string {
	t.Helper()
	before := len(cw.messenger.texts())
	cw.router.HandleUpdate(context.Background(), message(text, append([]updateOption{from(u)}, opts...)...))
	texts := cw.messenger.texts()
	require.Len(t, texts, before+1, "one reply to %q", text)
	return texts[before]
}

// bind grants user role in the test namespace with kubectl, as an admin
// would, and waits until the API server's authorizer sees it.
func (cw *clusterWorld) bind(t *testing.T, user int64, role, verb string) {
	t.Helper()
	cw.bindFor(t, user, role, access.OnTeleApps(verb))
}

// bindFor is bind for a role that grants p.
func (cw *clusterWorld) bindFor(t *testing.T, user int64, role string, p access.Permission) {
	t.Helper()
	ctx := context.Background()
	_, err := cw.c.Kubectl(ctx, "create", "rolebinding", fmt.Sprintf("u%d-%s", user, role), "--clusterrole="+role,
		"--user="+identity.User(user), "-n", cw.namespace)
	require.NoError(t, err)
	// The router's own authorizer: it may remember the refusal for a moment.
	require.Eventually(t, func() bool {
		return cw.access.Allowed(ctx, identity.For(user, chatID), p, cw.namespace) == nil
	}, 30*time.Second, 100*time.Millisecond, "RBAC never allowed %s", role)
}

func TestClusterCreateScaleWithRBAC(t *testing.T) {
	cw := newClusterWorld(t)
	ctx := context.Background()
	const alice, bob = 77, 78
	ns := cw.namespace

	// Without a RoleBinding: refused, naming what is missing, nothing created.
	reply := cw.say(t, alice, "/create web nginx:1.27 3")
	assert.Equal(t, fmt.Sprintf("⛔ You may not create teleapps in namespace %s: ask an admin for teleop-editor.", ns), reply)
	_, err := cw.teleop.TeleopV1alpha1().TeleApps(ns).Get(ctx, "web", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "want NotFound, got %v", err)

	// The same command works once an admin binds teleop-editor.
	cw.bind(t, alice, access.EditorRole, "create")
	reply = cw.say(t, alice, "/create web nginx:1.27 3")
	assert.Equal(t, fmt.Sprintf("✅ <b>web</b> created in <b>%s</b>: <code>nginx:1.27</code> × 3. I'll tell this chat how it goes.", ns), reply)
	app, err := cw.teleop.TeleopV1alpha1().TeleApps(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), *app.Spec.Replicas)
	assert.Equal(t, []string{fmt.Sprint(chatID)}, app.Spec.Notify.Chats)
	assert.Equal(t, "telegram:77 (@alice)", app.Annotations[apps.AnnotationLastChangedBy])
	assert.Equal(t, "/create web nginx:1.27 3", app.Annotations[apps.AnnotationLastCommand])

	// Scale, then the same update delivered again: applied once.
	scale := message("/scale web +2", from(alice))
	cw.router.HandleUpdate(ctx, scale)
	cw.router.HandleUpdate(ctx, scale)
	texts := cw.messenger.texts()
	assert.Equal(t, fmt.Sprintf("<b>web</b> scaled 3 → 5 in <b>%s</b>", ns), texts[len(texts)-2])
	assert.Equal(t, fmt.Sprintf("Already done: <b>web</b> has 5 replicas in <b>%s</b>.", ns), texts[len(texts)-1])
	app, err = cw.teleop.TeleopV1alpha1().TeleApps(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(5), *app.Spec.Replicas)
	assert.Equal(t, fmt.Sprintf("telegram-update-%d", scale.ID), app.Annotations[apps.AnnotationLastRequestID])

	// A viewer reads but may not write.
	cw.bind(t, bob, access.ViewerRole, "list")
	assert.Contains(t, cw.say(t, bob, "/list"), "<b>web</b> — ")
	assert.Contains(t, cw.say(t, bob, "/status web"), "5 desired")
	assert.Equal(t, fmt.Sprintf("⛔ You may not update teleapps in namespace %s: ask an admin for teleop-editor.", ns), cw.say(t, bob, "/scale web 1"))
	assert.Equal(t, fmt.Sprintf("⛔ You may not delete teleapps in namespace %s: ask an admin for teleop-editor.", ns), cw.say(t, bob, "/delete web"))
	app, err = cw.teleop.TeleopV1alpha1().TeleApps(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(5), *app.Spec.Replicas)

	// The audit trail is in Kubernetes Events on the TeleApp.
	require.Eventually(t, func() bool {
		events, err := cw.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web"})
		if err != nil {
			return false
		}
		var seen []string
		for _, e := range events.Items {
			if strings.Contains(e.Message, "telegram:77 (@alice)") && e.InvolvedObject.Kind == "TeleApp" {
				seen = append(seen, e.Reason)
			}
		}
		return assert.ObjectsAreEqual([]string{apps.ReasonCreatedFromChat, apps.ReasonScaledFromChat}, slices.Sorted(slices.Values(seen)))
	}, 30*time.Second, 200*time.Millisecond, "events naming the user and command")
}

// TestClusterChatRolesAggregate: the shipped roles join the built-in view
// and edit roles, so namespace viewers and editors get TeleApps too.
func TestClusterChatRolesAggregate(t *testing.T) {
	cw := newClusterWorld(t)
	ctx := context.Background()
	for role, verb := range map[string]string{"view": "list", "edit": "delete"} {
		require.Eventually(t, func() bool {
			cr, err := cw.kube.RbacV1().ClusterRoles().Get(ctx, role, metav1.GetOptions{})
			if err != nil {
				return false
			}
			for _, rule := range cr.Rules {
				if contains(rule.APIGroups, "teleop.io") && contains(rule.Resources, "teleapps") && contains(rule.Verbs, verb) {
					return true
				}
			}
			return false
		}, 30*time.Second, 200*time.Millisecond, "ClusterRole %s never got %s on teleapps", role, verb)
	}
}

// TestClusterDeleteAsksAndOnlyTheAskerDecides: /delete hands over to the
// conversations engine, which asks Yes/No; another user's press and No change
// nothing, the asker's Yes deletes.
func TestClusterDeleteAsksAndOnlyTheAskerDecides(t *testing.T) {
	cw := newClusterWorld(t)
	ctx := context.Background()
	const alice, bob = 77, 78
	cw.bind(t, alice, access.EditorRole, "delete")
	cw.bind(t, bob, access.EditorRole, "delete")
	require.Contains(t, cw.say(t, alice, "/create web nginx:1.27 1"), "created")
	exists := func() bool {
		_, err := cw.teleop.TeleopV1alpha1().TeleApps(cw.namespace).Get(ctx, "web", metav1.GetOptions{})
		return !apierrors.IsNotFound(err)
	}

	assert.Contains(t, cw.say(t, alice, "/delete web"), "Delete <b>web</b>")
	cw.router.HandleUpdate(ctx, cw.messenger.button(t, "🗑 Yes", bob))
	assert.True(t, exists(), "another user's Yes deleted the app")
	no := cw.messenger.button(t, "No", alice)
	cw.router.HandleUpdate(ctx, no)
	assert.True(t, exists(), "No deleted the app")
	assert.Contains(t, cw.messenger.texts()[len(cw.messenger.texts())-1], "Kept <b>web</b>")

	// The answered menu is stale now; the router or engine says so.
	answers := len(cw.messenger.answers)
	cw.router.HandleUpdate(ctx, no)
	require.Len(t, cw.messenger.answers, answers+1)
	assert.Equal(t, "This menu has expired.", cw.messenger.answers[answers])

	assert.Contains(t, cw.say(t, alice, "/delete web"), "Delete <b>web</b>")
	cw.router.HandleUpdate(ctx, cw.messenger.button(t, "🗑 Yes", alice))
	require.Eventually(t, func() bool { return !exists() }, 30*time.Second, 100*time.Millisecond)
}

// TestClusterNewCommandDropsConversation: a command typed mid-conversation
// ends it and says so; the conversation's next answer is then plain chatter.
func TestClusterNewCommandDropsConversation(t *testing.T) {
	cw := newClusterWorld(t)
	const alice = 77
	cw.bind(t, alice, access.EditorRole, "create")
	cw.say(t, alice, "/create")
	before := len(cw.messenger.texts())
	cw.router.HandleUpdate(context.Background(), message("/whoami", from(alice)))
	texts := cw.messenger.texts()[before:]
	require.NotEmpty(t, texts)
	assert.Contains(t, texts, "(I dropped your unfinished <code>/create</code>.)")
	assert.Contains(t, texts[len(texts)-1], "Kubernetes user: <code>telegram:77</code>")
	assert.Equal(t, "I understand commands. Send /help to see them.", cw.say(t, alice, "web"))
}

// TestClusterRollBackButtonIsForItsOwnApp: the [Roll back] button of a stuck
// /deploy rolls back once, a second press changes nothing, and once the app
// is deleted and another made under its name, the button finds nothing.
func TestClusterRollBackButtonIsForItsOwnApp(t *testing.T) {
	cw := newClusterWorld(t)
	ctx := context.Background()
	const alice = 77
	cw.bind(t, alice, access.EditorRole, "patch")
	teleApps := cw.teleop.TeleopV1alpha1().TeleApps(cw.namespace)
	require.Contains(t, cw.say(t, alice, "/create web nginx:1.27 1"), "created")
	// The history as the operator records it (no operator runs here).
	app, err := teleApps.Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	app.Status.History = []v1alpha1.Revision{{Revision: 1, Image: "nginx:1.27"}}
	_, err = teleApps.UpdateStatus(ctx, app, metav1.UpdateOptions{})
	require.NoError(t, err)

	tracked := &trackedRollouts{}
	cw.router.cfg.Progress = tracked
	require.Contains(t, cw.say(t, alice, "/deploy web nginx:broken"), "Deploying")
	undo := tracked.first(t).Undo
	require.NotNil(t, undo)
	assert.Equal(t, fmt.Sprintf("rb:%s:1", app.UID), undo.Data)
	image := func() string {
		app, err := teleApps.Get(ctx, "web", metav1.GetOptions{})
		require.NoError(t, err)
		return app.Spec.Image
	}

	cw.router.HandleUpdate(ctx, press(undo.Data, from(alice)))
	assert.Contains(t, lastOf(cw.messenger.texts()), "back to <code>nginx:1.27</code> (revision 1; was <code>nginx:broken</code>)")
	assert.Equal(t, "nginx:1.27", image())
	cw.router.HandleUpdate(ctx, press(undo.Data, from(alice)))
	assert.Contains(t, lastOf(cw.messenger.texts()), "already runs <code>nginx:1.27</code> (revision 1)")

	require.NoError(t, teleApps.Delete(ctx, "web", metav1.DeleteOptions{}))
	require.Contains(t, cw.say(t, alice, "/create web nginx:broken 1"), "created")
	require.Eventually(t, func() bool {
		found, err := cw.router.cfg.Index.ByIndex(UIDIndex, string(app.UID))
		return err == nil && len(found) == 0
	}, 30*time.Second, 20*time.Millisecond, "the informer never saw the old web go")
	texts := len(cw.messenger.texts())
	cw.router.HandleUpdate(ctx, press(undo.Data, from(alice)))
	assert.Equal(t, appGone, lastOf(cw.messenger.answers))
	assert.Len(t, cw.messenger.texts(), texts, "nothing was replied")
	assert.Equal(t, "nginx:broken", image(), "the new web was rolled back")
}
