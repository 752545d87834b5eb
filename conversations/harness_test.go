package conversations

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/chats"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleopfake "github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
)

const (
	group     int64 = -1001
	alice     int64 = 11
	bob       int64 = 22
	mallory   int64 = 33 // has no permissions at all
	namespace       = "default"
)

// recorder is a bot.Messenger that keeps what the bot said, per chat.
type recorder struct {
	mu       sync.Mutex
	nextID   int
	messages map[int]bot.Reply // by message ID; edits replace
	log      []bot.Reply       // every send and edit, in order
	answers  []string          // callback answers, in order
}

func newRecorder() *recorder { return &recorder{messages: map[int]bot.Reply{}} }

func (r *recorder) Send(_ context.Context, reply bot.Reply) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, reply)
	id := reply.EditMessageID
	if id == 0 {
		r.nextID++
		id = r.nextID
	}
	r.messages[id] = reply
	return id, nil
}

func (r *recorder) AnswerCallback(_ context.Context, _ string, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, text)
	return nil
}

func (r *recorder) sends() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// since returns the texts sent or edited after the first n.
func (r *recorder) since(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rep := range r.log[n:] {
		out = append(out, rep.Text)
	}
	return out
}

func (r *recorder) lastAnswer() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.answers) == 0 {
		return "<none>"
	}
	return r.answers[len(r.answers)-1]
}

// button finds the newest message in chat still showing a button labelled
// label on owner's menu, and returns its ID and the button.
func (r *recorder) button(chat int64, label string, owner int64) (int, bot.Button, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := r.nextID; id > 0; id-- {
		m, ok := r.messages[id]
		if !ok || m.ChatID != chat {
			continue
		}
		for _, row := range m.Buttons {
			for _, b := range row {
				if p, _, _ := parsePress(b.Data); b.Text == label && p.owner == owner {
					return id, b, true
				}
			}
		}
	}
	return 0, bot.Button{}, false
}

// fakeClock is the engine's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is an engine over fake clientsets: the conversations' ConfigMaps and
// the SubjectAccessReviews on one, the TeleApps and TeleChats on the other,
// with the real chats, apps client and authorizer on top.
type world struct {
	t       *testing.T
	kube    *kubefake.Clientset
	teleop  *teleopfake.Clientset
	bot     *recorder
	clock   *fakeClock
	engine  *Engine
	updates int64
	// grants: user → namespace → verbs allowed.
	mu     sync.Mutex
	grants map[int64]map[string][]string
}

func newWorld(t *testing.T, objects ...runtime.Object) *world {
	t.Helper()
	w := &world{
		t:      t,
		kube:   kubefake.NewClientset(namespaceObj("default"), namespaceObj("web"), namespaceObj("secret")),
		teleop: teleopfake.NewSimpleClientset(objects...),
		bot:    newRecorder(),
		clock:  &fakeClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)},
		grants: map[int64]map[string][]string{
			alice: {"default": {"get", "list", "create", "update", "patch", "delete"}, "web": {"list"}, "ghost": {"list"}},
			bob:   {"default": {"get", "list", "create", "update", "patch", "delete"}},
		},
	}
	// RBAC as the API server would answer it for these grants.
	w.kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		review := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		attrs := review.Spec.ResourceAttributes
		w.mu.Lock()
		defer w.mu.Unlock()
		for user, byNS := range w.grants {
			if identity.User(user) == review.Spec.User && slices.Contains(byNS[attrs.Namespace], attrs.Verb) {
				review.Status.Allowed = true
			}
		}
		return true, review, nil
	})
	w.engine = w.newEngine()
	return w
}

// newEngine builds an engine over the world's cluster, as a restarted
// teleop or a new leader would: everything loaded afresh.
func (w *world) newEngine() *Engine {
	return NewEngine(Config{
		Messenger:         w.bot,
		Apps:              apps.New(w.teleop, record.NewFakeRecorder(100)),
		Authorizer:        access.NewWithClock(w.kube, nil, w.clock),
		Namespaces:        startChats(w.t, w.teleop, "teleop-system"),
		ClusterNamespaces: cachedNamespaces(w.t, w.kube),
		ConfigMaps:        w.kube.CoreV1().ConfigMaps("teleop-system"),
		Now:               w.clock.Now,
		Logger:            slog.New(slog.DiscardHandler),
	})
}

// startChats reads and writes the TeleChats of namespace, as cmd/teleop does.
func startChats(t testing.TB, client versioned.Interface, namespace string) *chats.Chats {
	t.Helper()
	c, err := chats.Start(t.Context(), client, namespace)
	require.NoError(t, err)
	return c
}

// revoke takes the user's rights in ns away, and lets the time pass in
// which the authorizer may still remember them.
func (w *world) revoke(user int64, ns string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.grants[user], ns)
	w.clock.Advance(access.AllowedTTL + time.Millisecond)
}

// cachedNamespaces is a synced namespace informer's lister over client, as
// cmd wires it.
func cachedNamespaces(t testing.TB, client kubernetes.Interface) NamespaceLister {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	lister := factory.Core().V1().Namespaces().Lister()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); factory.Shutdown() })
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	return lister
}

func namespaceObj(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func teleApp(name string, replicas int32) *v1alpha1.TeleApp {
	return &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To(replicas)},
	}
}

func usernameOf(user int64) string {
	return map[int64]string{alice: "alice", bob: "bob", mallory: "mallory"}[user]
}

func (w *world) update(user int64) bot.Update {
	w.updates++
	return bot.Update{ID: w.updates, ChatID: group, ChatType: "supergroup", UserID: user, Username: usernameOf(user)}
}

// start runs Start as the Router does for a bare command.
func (w *world) start(user int64, flow string, preset map[string]string) []string {
	w.t.Helper()
	before := w.bot.sends()
	u := w.update(user)
	u.Text = "/" + flow
	require.NoError(w.t, w.engine.Start(context.Background(), flow, u, preset))
	return w.bot.since(before)
}

// say sends text as user and returns what the bot said in reply.
func (w *world) say(user int64, text string) (bool, []string) {
	w.t.Helper()
	before := w.bot.sends()
	u := w.update(user)
	u.Text = text
	handled, err := w.engine.Handle(context.Background(), u)
	require.NoError(w.t, err)
	return handled, w.bot.since(before)
}

// press presses the newest button labelled label on owner's menu, as user.
func (w *world) press(user, owner int64, label string) []string {
	w.t.Helper()
	id, b, ok := w.bot.button(group, label, owner)
	require.True(w.t, ok, "no button %q on screen", label)
	return w.pressData(user, id, b.Data)
}

func (w *world) pressData(user int64, messageID int, data string) []string {
	w.t.Helper()
	before := w.bot.sends()
	u := w.update(user)
	u.MessageID = messageID
	u.Callback = &bot.Callback{ID: fmt.Sprint("cb", w.updates), Data: data}
	handled, err := w.engine.Handle(context.Background(), u)
	require.NoError(w.t, err)
	require.True(w.t, handled)
	return w.bot.since(before)
}

func (w *world) apps() map[string]int32 {
	list, err := w.teleop.TeleopV1alpha1().TeleApps(namespace).List(context.Background(), metav1.ListOptions{})
	require.NoError(w.t, err)
	out := map[string]int32{}
	for _, a := range list.Items {
		out[a.Name] = ptr.Deref(a.Spec.Replicas, 1)
	}
	return out
}

func (w *world) open(user int64) string {
	flow, ok, err := w.engine.Open(context.Background(), group, user)
	require.NoError(w.t, err)
	if !ok {
		return ""
	}
	return flow
}

func joined(texts []string) string { return strings.Join(texts, "\n---\n") }
