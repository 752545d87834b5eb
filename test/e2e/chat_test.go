package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/test/telegramemu"
)

// A user with teleop-editor creates, scales and deletes an app from the chat,
// and hears about every step, over long polling.
func TestChatLifecycleOverPolling(t *testing.T) {
	e := newEnv(t)
	e.start()
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)

	alice.say("/create web nginx:1.27 3", "created")
	app := e.teleApp("web")
	require.NotNil(t, app)
	assert.Equal(t, "nginx:1.27", app.Spec.Image)
	assert.Equal(t, int32(3), *app.Spec.Replicas)
	assert.Contains(t, app.Spec.Notify.Chats, "1001", "the chat that created it is told about it")
	assert.Contains(t, app.Annotations["teleop.io/last-changed-by"], "telegram:1001")
	alice.waitText("ready")

	alice.say("/scale web +2", "3 → 5")
	e.eventually("the Deployment to have 5 replicas", 30*time.Second, func() (bool, error) {
		return e.deploymentReplicas("web") == 5, nil
	})

	confirm := alice.say("/delete web", "Delete <b>web</b>")
	alice.press(confirm, "No")
	require.NotNil(t, e.teleApp("web"), "No keeps the app")

	confirm = alice.say("/delete web", "Delete <b>web</b>")
	alice.press(confirm, "Yes")
	e.eventually("the TeleApp to be gone", 30*time.Second, func() (bool, error) { return e.teleApp("web") == nil, nil })
	alice.waitText("deleted")
}

// A user without a RoleBinding is refused with what is missing and changes
// nothing; after an admin binds teleop-editor, the same command works.
func TestChatRBAC(t *testing.T) {
	e := newEnv(t)
	e.start()
	bob := e.user(2002, "bob")
	create := "/create " + e.appsNS + "/api nginx:1.27 1"

	refusal := bob.say(create, "teleop-editor")
	assert.Contains(t, refusal.Text, "create")
	assert.Nil(t, e.teleApp("api"), "a refused command changes nothing")
	bob.say("/ns "+e.appsNS, "teleop-viewer") // even reading needs a binding

	bob.grant("teleop-editor")
	bob.say(create, "created")
	require.NotNil(t, e.teleApp("api"))
}

// Only the user who asked may confirm a deletion.
func TestDeleteConfirmationBelongsToItsAuthor(t *testing.T) {
	e := newEnv(t)
	e.start()
	const group = -4001
	alice := e.user(1001, "alice").inGroup(group)
	mallory := e.user(6666, "mallory").inGroup(group)
	alice.grant("teleop-editor")
	mallory.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 1", "created")

	confirm := alice.say("/delete web", "Delete <b>web</b>")
	mallory.press(confirm, "Yes")
	time.Sleep(500 * time.Millisecond) // a wrongly accepted press would delete within this
	require.NotNil(t, e.teleApp("web"), "another user's press deletes nothing")

	alice.press(confirm, "Yes")
	e.eventually("the TeleApp to be gone", 30*time.Second, func() (bool, error) { return e.teleApp("web") == nil, nil })
}

// In webhook mode Telegram's posts reach teleop; forged posts without the
// secret are refused and run nothing.
func TestWebhookMode(t *testing.T) {
	e := newEnv(t)
	listen := freeAddr(t)
	hook := "http://" + listen + "/telegram"
	e.start("--telegram-mode=webhook", "--webhook-listen="+listen, "--webhook-url="+hook, "--webhook-secret=e2e-secret")
	url, secret, set := e.emu.Webhook()
	require.True(t, set, "teleop registers its webhook")
	assert.Equal(t, hook, url)
	assert.Equal(t, "e2e-secret", secret)

	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 2", "created")
	require.NotNil(t, e.teleApp("web"))

	forged := (`{"update_id":999001,"message":{"message_id":1,"date":1,"chat":{"id":1001,"type":"private"},"from":{"id":1001,"is_bot":false,"first_name":"alice"},"text":"/create evil nginx:1.27 1"}}`)
	for _, header := range []string{"", "wrong"} {
		req, err := http.NewRequest(http.MethodPost, hook, strings.NewReader(forged))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "secret %q", header)
	}
	time.Sleep(500 * time.Millisecond)
	assert.Nil(t, e.teleApp("evil"), "a forged call runs nothing")
}

// teleop killed after handling an update but before confirming it to
// Telegram sees the update again on restart, and does not run it twice.
func TestRestartDoesNotRunACommandTwice(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 1", "created")
	time.Sleep(300 * time.Millisecond) // teleop is back in its long poll

	// The poll in flight still delivers the next update, but every later
	// getUpdates fails, so teleop can never confirm it.
	faultEnds := time.Now().Add(10 * time.Second)
	e.emu.Fail(telegramemu.Fault{Method: "getUpdates", Until: faultEnds, Status: http.StatusBadGateway})
	alice.say("/scale web +2", "1 → 3")
	p.kill()
	require.Positive(t, e.emu.PendingUpdates(), "the scale update is still unconfirmed when teleop dies")

	time.Sleep(time.Until(faultEnds))
	e.start()
	e.eventually("the redelivered update to be confirmed", 30*time.Second, func() (bool, error) {
		return e.emu.PendingUpdates() == 0, nil
	})
	alice.say("/status web", "web")
	assert.Equal(t, int32(3), *e.teleApp("web").Spec.Replicas, "scale +2 ran once")
	scaled := 0
	for _, m := range e.emu.Messages(alice.chat.ID) {
		// The reply (maybe edited as the rollout moved), not the notice.
		if strings.Contains(m.Text, "1 → 3") && !isNotice(m) {
			scaled++
		}
	}
	assert.Equal(t, 1, scaled, "the scale was answered once: %s", texts(e.emu.Messages(alice.chat.ID)))
}

// teleop killed in the middle of a burst of commands in one chat, with
// updates accepted and waiting behind the one running: after the restart
// every command ran exactly once (none lost with the crash, none run again).
func TestKilledMidBurstLosesNoCommandAndRunsNoneTwice(t *testing.T) {
	e := newEnv(t)
	// The burst is far above a person's pace: lift the inbound limits, which
	// would drop most of it (they are not what this test is about).
	lifted := []string{"--user-burst", "100", "--chat-burst", "100"}
	p := e.start(lifted...)
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 1", "created")

	const burst = 30
	for range burst {
		e.emu.SendText(alice.chat, alice.from, "/scale web +1")
	}
	e.eventually("a few of the scales to be applied", 30*time.Second, func() (bool, error) {
		return *e.teleApp("web").Spec.Replicas >= 4, nil
	})
	p.kill()
	t.Logf("killed with %d updates unconfirmed at the emulator, replicas %d", e.emu.PendingUpdates(), *e.teleApp("web").Spec.Replicas)

	e.start(lifted...)
	e.eventually("every scale to be applied", time.Minute, func() (bool, error) {
		return *e.teleApp("web").Spec.Replicas == 1+burst, nil
	})
	alice.say("/status web", "web")
	assert.Equal(t, int32(1+burst), *e.teleApp("web").Spec.Replicas, "a scale ran twice")
	assert.NotContains(t, texts(e.emu.Messages(alice.chat.ID)), "Already done", "an update was handled again")
}

// Two teleop replicas elect one leader: only it polls Telegram; when it dies
// the other takes over and an open conversation goes on.
func TestLeaderElection(t *testing.T) {
	e := newEnv(t)
	first := e.spawn("run", append(e.baseArgs(), "--leader-elect")...)
	first.waitReady(t)
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	second := e.spawn("run", append(e.baseArgs(), "--leader-elect")...)
	second.waitReady(t)

	alice.say("/create", "name")
	alice.say("web", "image")

	leader, follower := first, second
	if !strings.Contains(first.log.String(), "became the leader") {
		leader, follower = second, first
	}
	killedAt := time.Now()
	leader.kill()
	e.eventually("the follower to lead", 20*time.Second, func() (bool, error) {
		return strings.Contains(follower.log.String(), "became the leader"), nil
	})
	t.Logf("takeover after %v", time.Since(killedAt))
	assert.Less(t, time.Since(killedAt), 15*time.Second)

	alice.say("nginx:1.27", "replicas")
	assert.Equal(t, 1, e.emu.Stats().MaxConcurrentPolls, "never two pollers at once")
}

// Bad flags stop teleop at start with one clear line, before it touches anything.
func TestBadFlagsStopAtStart(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--telegram-mode=fax"}, "--telegram-mode must be polling or webhook"},
		{[]string{"--telegram-token=1:x", "--telegram-mode=webhook", "--webhook-url=https://x.example/h"}, "needs --webhook-secret"},
		{[]string{"--telegram-token-file=/nonexistent"}, "read --telegram-token-file"},
		{[]string{"--admins=alice"}, "not a Telegram ID"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out bytes.Buffer
			cmd := exec.Command(teleopBinary, append([]string{"run", "--kubeconfig=/nonexistent"}, tt.args...)...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, 2, exit.ExitCode())
			assert.Contains(t, out.String(), tt.want)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(out.String()), "\n")+1, "one line: %q", out.String())
		})
	}
}

// Without a token teleop runs the operator alone and says so; kubectl's
// TeleApps are reconciled all the same.
func TestOperatorOnlyWithoutToken(t *testing.T) {
	e := newEnv(t)
	args := []string{"--kubeconfig", e.cluster.Kubeconfig, "--namespace", e.systemNS, "--watch-namespace", e.appsNS, "--metrics-addr", freeAddr(t)}
	p := e.spawn("run", args...)
	p.waitReady(t)
	assert.Contains(t, p.log.String(), "operator only")

	manifest := fmt.Sprintf("apiVersion: teleop.io/v1alpha1\nkind: TeleApp\nmetadata:\n  name: kube\n  namespace: %s\nspec:\n  image: nginx:1.27\n  replicas: 2\n", e.appsNS)
	path := filepath.Join(t.TempDir(), "kube.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifest), 0o600))
	out, err := e.cluster.Kubectl(ctx(t), "apply", "-f", path)
	require.NoError(t, err, out)
	e.eventually("the Deployment", 30*time.Second, func() (bool, error) {
		d, err := e.kube.AppsV1().Deployments(e.appsNS).Get(context.Background(), "kube", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2, nil
	})
}

// /metrics tells an operator of teleop what it did: reconciles, the work
// queue, Telegram traffic and commands; /healthz answers while it lives.
func TestMetricsAndHealth(t *testing.T) {
	e := newEnv(t)
	metricsAddr := freeAddr(t)
	p := e.spawn("run", append(e.baseArgs(), "--metrics-addr", metricsAddr)...)
	p.waitReady(t)
	alice := e.user(1001, "alice")
	alice.grant("teleop-editor")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/create web nginx:1.27 1", "created")
	alice.say("/list", "web")

	var metrics string
	e.eventually("the reconcile to be counted", 30*time.Second, func() (bool, error) {
		metrics = httpGet(t, "http://"+metricsAddr+"/metrics")
		return strings.Contains(metrics, `teleop_reconciles_total{result="success"}`), nil
	})
	for _, want := range []string{
		`teleop_commands_total{command="list",result="matched"} 1`,
		`teleop_commands_total{command="create",result="matched"} 1`,
		`teleop_reconcile_duration_seconds_bucket`,
		`workqueue_depth{name="teleapps"}`,
		`teleop_telegram_updates_received_total`,
		`teleop_telegram_messages_sent_total`,
		`teleop_conversations_open 0`,
		`go_goroutines`,
	} {
		assert.Contains(t, metrics, want)
	}
	assert.Equal(t, "ok\n", httpGet(t, "http://"+p.healthAddr+"/healthz"))
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}
