package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// Chats keep their namespace across the upgrade from the old store; a group
// an admin bound with kubectl works where it was bound; a muted chat hears
// no notices but still gets its replies.
func TestChatSettingsAreTeleChats(t *testing.T) {
	e := newEnv(t)
	alice := e.user(1001, "alice")
	team := alice.inGroup(-3003)
	// What the previous teleop left: its "chats" bucket, alice's chat in appsNS.
	_, err := e.kube.CoreV1().ConfigMaps(e.systemNS).Create(ctx(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "teleop-chats", Annotations: map[string]string{"teleop.io/shards": "1"}},
		Data:       map[string]string{"1001": "0|" + e.appsNS},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// An admin binds the team's group, muted, with kubectl.
	manifest := filepath.Join(t.TempDir(), "team.yaml")
	require.NoError(t, os.WriteFile(manifest, fmt.Appendf(nil, `apiVersion: teleop.io/v1alpha1
kind: TeleChat
metadata:
  name: chat--3003
spec:
  chatID: "-3003"
  namespace: %s
  allowedNamespaces: [%s]
  mute: true
`, e.appsNS, e.appsNS), 0o600))
	out, err := e.cluster.Kubectl(ctx(t), "apply", "-n", e.systemNS, "-f", manifest)
	require.NoError(t, err, out)

	e.start("--admins", "1001") // allowed everywhere: what stops /ns below is the TeleChat alone
	alice.say("/create web nginx:1.27 1", "created in <b>"+e.appsNS+"</b>")
	team.say("/create shop nginx:1.27 1", "created in <b>"+e.appsNS+"</b>")
	team.say("/ns default", "may not work in default, only in "+e.appsNS)
	sent := len(e.emu.Messages(team.chat.ID))

	// An app both chats follow gets ready: only alice's chat is told.
	_, err = e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Create(ctx(t), &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "both"},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Notify: &v1alpha1.Notify{Chats: []string{"-3003", "1001"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	alice.waitText("<b>both</b> is ready: 1/1 (nginx") // the notice, not a reply's live progress
	alice.waitText("<b>web</b> is ready: 1/1 (nginx")
	time.Sleep(time.Second) // the muted chat's notices would have left with alice's
	assert.Len(t, e.emu.Messages(team.chat.ID), sent, "the muted group got no notice of shop or both: %s", texts(e.emu.Messages(team.chat.ID)))

	chats, err := e.tele.TeleopV1alpha1().TeleChats(e.systemNS).List(ctx(t), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, chats.Items, 2, "alice's chat was imported, the team's kept")
}
