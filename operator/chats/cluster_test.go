package chats_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/chats"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// world is teleop's namespace on the real control plane, with the TeleChat
// CRD of deploy/crds installed.
type world struct {
	c         *cluster.Cluster
	kube      kubernetes.Interface
	teleop    versioned.Interface
	namespace string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := cluster.Shared(t)
	return &world{
		c:         c,
		kube:      kubernetes.NewForConfigOrDie(c.RESTConfig()),
		teleop:    versioned.NewForConfigOrDie(c.RESTConfig()),
		namespace: c.Namespace(t, "teleop-"),
	}
}

// start is a (re)started teleop's view of the TeleChats.
func (w *world) start(t *testing.T) *chats.Chats {
	t.Helper()
	c, err := chats.Start(t.Context(), w.teleop, w.namespace)
	require.NoError(t, err)
	return c
}

// apply runs kubectl apply on manifest in teleop's namespace, as an admin or
// GitOps would.
func (w *world) apply(t *testing.T, manifest string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "telechat.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifest), 0o600))
	return w.c.Kubectl(context.Background(), "apply", "-n", w.namespace, "-f", path)
}

func telechat(name, spec string) string {
	return fmt.Sprintf("apiVersion: teleop.io/v1alpha1\nkind: TeleChat\nmetadata:\n  name: %s\nspec:\n%s", name, spec)
}

func namespaceOf(t *testing.T, c *chats.Chats, chat int64) string {
	t.Helper()
	ns, err := c.Get(context.Background(), chat)
	require.NoError(t, err)
	return ns
}

func TestSetIsReadAtOnceAndAfterARestart(t *testing.T) {
	w := newWorld(t)
	c := w.start(t)
	const chat = -1001234567890
	assert.Equal(t, chats.DefaultNamespace, namespaceOf(t, c, chat), "a chat without a TeleChat")

	require.NoError(t, c.Set(context.Background(), chat, "web"))
	assert.Equal(t, "web", namespaceOf(t, c, chat), "the command after /ns reads what /ns wrote")
	require.NoError(t, c.Set(context.Background(), chat, "shop"))
	assert.Equal(t, "shop", namespaceOf(t, c, chat))
	assert.Equal(t, "shop", namespaceOf(t, w.start(t), chat), "a restarted teleop reads it from the cluster")

	obj, err := w.teleop.TeleopV1alpha1().TeleChats(w.namespace).Get(context.Background(), "chat--1001234567890", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "-1001234567890", obj.Spec.ChatID)
	assert.Equal(t, "shop", obj.Spec.Namespace)

	assert.Error(t, c.Set(context.Background(), chat, "Not/Valid"))
	assert.Equal(t, "shop", namespaceOf(t, c, chat), "a bad namespace changes nothing")
}

func TestAnAdminPreBindsAChatWithKubectl(t *testing.T) {
	w := newWorld(t)
	c := w.start(t)
	const chat = -42
	out, err := w.apply(t, telechat("chat--42", "  chatID: \"-42\"\n  namespace: web\n  allowedNamespaces: [web, staging]\n"))
	require.NoError(t, err, out)
	require.Eventually(t, func() bool { return namespaceOf(t, c, chat) == "web" }, 10*time.Second, 20*time.Millisecond,
		"the chat works where the admin bound it")

	err = c.Set(context.Background(), chat, "prod")
	var notAllowed *chats.NotAllowedError
	require.ErrorAs(t, err, &notAllowed)
	assert.Equal(t, "this chat may not work in prod, only in web, staging", notAllowed.Error())
	assert.Equal(t, "web", namespaceOf(t, c, chat), "a refused /ns changes nothing")

	require.NoError(t, c.Set(context.Background(), chat, "staging"))
	assert.Equal(t, "staging", namespaceOf(t, c, chat))
	obj, err := w.teleop.TeleopV1alpha1().TeleChats(w.namespace).Get(context.Background(), "chat--42", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"web", "staging"}, obj.Spec.AllowedNamespaces, "/ns keeps what the admin set")
}

func TestTheAPIServerRefusesBadTeleChats(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name, object, message string
	}{
		{"name not after the chat", telechat("ops", "  chatID: \"7\"\n"), "metadata.name must be chat-<spec.chatID>"},
		{"chat ID not a number", telechat("chat-abc", "  chatID: abc\n"), "chatID must be a Telegram chat ID"},
		{"namespace not a DNS label", telechat("chat-7", "  chatID: \"7\"\n  namespace: Web_1\n"), "namespace must be a DNS-1123 label"},
		{"namespace outside the allowed", telechat("chat-7", "  chatID: \"7\"\n  namespace: prod\n  allowedNamespaces: [web]\n"), "spec.namespace must be one of spec.allowedNamespaces"},
		{"no namespace and default not allowed", telechat("chat-7", "  chatID: \"7\"\n  allowedNamespaces: [web]\n"), "spec.namespace must be one of spec.allowedNamespaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := w.apply(t, tt.object)
			require.Error(t, err, out)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
	list, err := w.teleop.TeleopV1alpha1().TeleChats(w.namespace).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.Items, "nothing was stored")
}

// notices records which chats were told something.
type notices struct {
	mu    sync.Mutex
	chats []string
}

func (n *notices) Notify(_ context.Context, chatID string, _ announce.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.chats = append(n.chats, chatID)
	return nil
}

func TestAMutedChatGetsNoNotices(t *testing.T) {
	w := newWorld(t)
	c := w.start(t)
	out, err := w.apply(t, telechat("chat-5", "  chatID: \"5\"\n  mute: true\n")+"\n---\n"+telechat("chat-6", "  chatID: \"6\"\n  mute: false\n"))
	require.NoError(t, err, out)
	require.Eventually(t, func() bool { return c.Muted(5) }, 10*time.Second, 20*time.Millisecond)
	assert.False(t, c.Muted(6))
	assert.False(t, c.Muted(7), "a chat without a TeleChat")

	got := &notices{}
	notifier := c.SkipMuted(got)
	for _, chat := range []string{"5", "6", "7"} {
		require.NoError(t, notifier.Notify(context.Background(), chat, announce.Notice{Kind: announce.KindReady}))
	}
	assert.Equal(t, []string{"6", "7"}, got.chats)
}

// oldChats is the "chats" bucket as the old store left it: shard 0 named
// teleop-chats, entries "<chat>": "<expiry ms>|<namespace>".
func oldChats(name string, shards int, data map[string]string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"app.kubernetes.io/managed-by": "teleop", "teleop.io/bucket": "chats",
	}}, Data: data}
	if shards > 0 {
		cm.Annotations = map[string]string{"teleop.io/shards": fmt.Sprint(shards)}
	}
	return cm
}

func TestImportTurnsTheOldStoresChatsIntoTeleChatsOnce(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cms := w.kube.CoreV1().ConfigMaps(w.namespace)
	// Two shards; each entry sits in the shard its key hashes to, as the old
	// store placed it, except "stray", left behind by an interrupted split.
	_, err := cms.Create(ctx, oldChats("teleop-chats", 2, map[string]string{
		"-1001": "0|web", "12": "0|shop", "3": "0|Not_A_Namespace", "abc": "0|web",
	}), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cms.Create(ctx, oldChats("teleop-chats-1", 0, map[string]string{"-1002": "0|staging", "7": "0|stray"}), metav1.CreateOptions{})
	require.NoError(t, err)
	out, err := w.apply(t, telechat("chat-12", "  chatID: \"12\"\n  namespace: kept\n"))
	require.NoError(t, err, out)

	c := w.start(t)
	imported, err := c.Import(ctx, cms, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, 2, imported)
	for chat, want := range map[int64]string{-1001: "web", -1002: "staging", 12: "kept", 3: "default", 7: "default"} {
		assert.Equal(t, want, namespaceOf(t, c, chat), "chat %d", chat)
	}

	// Once: a TeleChat deleted after the import stays deleted.
	require.NoError(t, w.teleop.TeleopV1alpha1().TeleChats(w.namespace).Delete(ctx, "chat--1001", metav1.DeleteOptions{}))
	imported, err = w.start(t).Import(ctx, cms, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Zero(t, imported)
	_, err = w.teleop.TeleopV1alpha1().TeleChats(w.namespace).Get(ctx, "chat--1001", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "want NotFound, got %v", err)
	first, err := cms.Get(ctx, "teleop-chats", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, first.Annotations[chats.AnnotationImported])
}

func TestImportWithoutAnOldStoreDoesNothing(t *testing.T) {
	w := newWorld(t)
	imported, err := w.start(t).Import(context.Background(), w.kube.CoreV1().ConfigMaps(w.namespace), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Zero(t, imported)
}
