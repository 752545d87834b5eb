package e2e

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/telegramemu"
)

// A team ships versions from the chat: /deploy follows the rollout live, a
// :broken image gets stuck and is rolled back from its button, /restart
// replaces the pods, /history lists who shipped what, /rollback goes back to
// a named revision, and kubectl sees the same history.
func TestDayTwoVerbs(t *testing.T) {
	e := newEnv(t)
	const team = -5000 // a group told about every app, where nobody typed
	e.start("--notify-chats", strconv.Itoa(team))
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 2", "created")
	alice.waitText("is ready")

	deploy := alice.say("/deploy web nginx:1.28", "Deploying")
	alice.waitEdited(deploy.ID, "<b>web</b> is on <code>nginx:1.28</code>: 2/2 in ")
	assert.Equal(t, "nginx:1.28", e.teleApp("web").Spec.Image)

	history := alice.say("/history web", "History of")
	assert.Contains(t, history.Text, "<code>nginx:1.27</code>")
	assert.Contains(t, history.Text, "<code>nginx:1.28</code>")
	assert.Contains(t, history.Text, "telegram:1001 (@alice)")

	restart := alice.say("/restart web", "Restarting")
	alice.waitEdited(restart.ID, "<b>web</b> restarted: 2/2 in ")
	_, err := e.emu.WaitMessage(ctx(t), team, func(m telegramemu.Message) bool {
		return strings.Contains(m.Text, "restarted in "+e.appsNS+" by telegram:1001 (@alice)")
	})
	require.NoError(t, err, "the restart is announced with who asked; the team has: %s", texts(e.emu.Messages(team)))
	// and in the chat that asked, where the live reply's edits must not
	// erase it (a live reply is never joined with other messages)
	alice.waitText("restarted in " + e.appsNS + " by telegram:1001 (@alice)")
	d, err := e.kube.AppsV1().Deployments(e.appsNS).Get(ctx(t), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, e.teleApp("web").Spec.RestartedAt, d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"])

	// A broken image gets stuck: the reply names the pod's reason and offers [Roll back].
	broken := alice.say("/deploy web nginx:broken", "Deploying")
	stuck := alice.waitEdited(broken.ID, "ImagePullBackOff")
	assert.Contains(t, stuck.Text, "is stuck")
	before := len(e.emu.Messages(alice.chat.ID))
	alice.press(stuck, "Roll back")
	back := alice.waitNew(before, "back to <code>nginx:1.28</code>")
	alice.waitEdited(back.ID, "<b>web</b> is on <code>nginx:1.28</code>: 2/2")
	app := e.teleApp("web")
	assert.Equal(t, "nginx:1.28", app.Spec.Image)
	assert.Equal(t, "telegram:1001 (@alice)", app.Annotations["teleop.io/last-changed-by"])
	// the same button again changes nothing
	before = len(e.emu.Messages(alice.chat.ID))
	alice.press(stuck, "Roll back")
	alice.waitNew(before, "already runs <code>nginx:1.28</code>")

	// /rollback to a named revision, and kubectl shows the history
	alice.say("/rollback web 1", "back to <code>nginx:1.27</code> (revision 1")
	e.eventually("revision 5 (nginx:1.27) in the history", 60*time.Second, func() (bool, error) {
		latest := e.teleApp("web").Status.LatestRevision()
		return latest != nil && latest.Revision == 5 && latest.Image == "nginx:1.27", nil
	})
	assert.Equal(t, []string{"nginx:1.27", "nginx:1.28", "nginx:broken", "nginx:1.28", "nginx:1.27"}, imagesOf(e.teleApp("web").Status.History))
	out, err := e.cluster.Kubectl(ctx(t), "-n", e.appsNS, "get", "tapp", "web", "-o", "yaml")
	require.NoError(t, err)
	assert.Contains(t, out, "changedBy: telegram:1001 (@alice)")
	out, err = e.cluster.Kubectl(ctx(t), "explain", "teleapps.status.history")
	require.NoError(t, err)
	assert.Contains(t, out, "rollback")

	// A viewer may read the history but not restart, deploy or roll back.
	bob := e.user(2002, "bob")
	bob.grant("teleop-viewer")
	bob.say("/ns "+e.appsNS, e.appsNS)
	bob.say("/history web", "History of")
	for _, cmd := range []string{"/restart web", "/deploy web nginx:1.29", "/rollback web"} {
		refusal := bob.say(cmd, "⛔")
		assert.Contains(t, refusal.Text, "patch", cmd)
	}
	assert.Equal(t, "nginx:1.27", e.teleApp("web").Spec.Image)

	// web deleted and another web made: the old [Roll back] finds nothing
	// (as the press's answer, or, when teleop's cache had not yet seen the
	// delete, as the reply to the write it refused).
	out, err = e.cluster.Kubectl(ctx(t), "-n", e.appsNS, "delete", "tapp", "web")
	require.NoError(t, err, out)
	alice.say("/create web nginx:1.29 1", "created")
	const gone = "The app of this button was deleted; nothing changed."
	before = len(e.emu.Messages(alice.chat.ID))
	if answer := alice.pressFor(stuck, "Roll back"); answer != gone {
		alice.waitNew(before, gone)
	}
	assert.Equal(t, "nginx:1.29", e.teleApp("web").Spec.Image)
}

// /deploy without arguments asks which app, then for the image, and its
// last message follows the rollout.
func TestDeployConversation(t *testing.T) {
	e := newEnv(t)
	e.start()
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 1", "created")

	pick := alice.say("/deploy", "Which app")
	alice.press(pick, "web")
	alice.waitText("Which image should it run?")
	alice.say("nginx:bad image", "Send an image reference")
	done := alice.say("nginx:1.29", "Deploying")
	alice.waitEdited(done.ID, "<b>web</b> is on <code>nginx:1.29</code>: 1/1")
	assert.Equal(t, "nginx:1.29", e.teleApp("web").Spec.Image)
}

// The console runs the same verbs; its logs go to a file it names, and a
// typed number means the number even while buttons are shown.
func TestConsoleVerbs(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	cmd := exec.Command(teleopBinary, "console", "--kubeconfig", e.cluster.Kubeconfig, "--namespace", e.systemNS,
		"--watch-namespace", e.appsNS, "--metrics-addr", "", "--health-addr", "")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "KUBECONFIG=", "TELEOP_LOG_LEVEL=")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	screen := newScreen(stdout)

	screen.wait(t, 0, "Logs go to "+filepath.Join(tmp, "teleop-console.log"))
	type step struct{ line, want string }
	for _, s := range []step{
		{"/ns " + e.appsNS, e.appsNS},
		{"/create web nginx:1.27 3", "is ready"},
		{"/scale", "Which app"},
		{"#1", "How many should it have?"},
		{"4", "scaled 3 → 4"}, // buttons 1 2 4 5 6 show: 4 is four replicas, not the fourth button
		{"/deploy web nginx:1.28", "web is on nginx:1.28: 4/4"},
		{"/history web", "nginx:1.27"},
		{"/restart web", "web restarted: 4/4"},
		{"/rollback web", "web is on nginx:1.27: 4/4"},
	} {
		from := len(screen.text())
		_, err := io.WriteString(stdin, s.line+"\n")
		require.NoError(t, err)
		screen.wait(t, from, s.want)
	}
	assert.Equal(t, int32(4), *e.teleApp("web").Spec.Replicas)
	assert.Equal(t, "nginx:1.27", e.teleApp("web").Spec.Image)
	assert.NotContains(t, screen.text(), "level=", "no log line on the console's screen")
	logs, err := os.ReadFile(filepath.Join(tmp, "teleop-console.log"))
	require.NoError(t, err)
	assert.Contains(t, string(logs), "level=INFO")
	assert.Empty(t, stderr.String())
}

// waitEdited waits until message id, as sent or edited, contains want.
func (u *user) waitEdited(id int, want string) telegramemu.Message {
	u.e.t.Helper()
	m, err := u.e.emu.WaitMessage(ctx(u.e.t), u.chat.ID, func(m telegramemu.Message) bool {
		return m.ID == id && strings.Contains(m.Text, want)
	})
	require.NoError(u.e.t, err, "message %d never said %q; messages: %s", id, want, texts(u.e.emu.Messages(u.chat.ID)))
	return m
}

func imagesOf(history []v1alpha1.Revision) []string {
	out := make([]string, len(history))
	for i, r := range history {
		out[i] = r.Image
	}
	return out
}

// screen collects what a process prints, for tests that wait for a line.
type screen struct {
	out     syncBuffer
	changed chan struct{}
}

func newScreen(r io.Reader) *screen {
	s := &screen{changed: make(chan struct{}, 1)}
	go func() {
		lines := bufio.NewScanner(r)
		for lines.Scan() {
			_, _ = s.out.Write(append(lines.Bytes(), '\n'))
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

func (s *screen) text() string { return s.out.String() }

// wait waits until the screen shows want past its first from bytes.
func (s *screen) wait(t *testing.T, from int, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for !strings.Contains(s.text()[from:], want) {
		select {
		case <-s.changed:
		case <-ctx.Done():
			t.Fatalf("the console never showed %q; it shows:\n%s", want, s.text())
		}
	}
}
