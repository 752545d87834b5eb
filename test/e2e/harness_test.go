// Package e2e drives the real teleop binary against the local control plane
// and the Telegram Bot API emulator, as a user and a cluster admin would.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// teleopBinary is built once per test process from ./cmd/teleop.
var teleopBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "teleop-e2e-bin")
	if err != nil {
		panic(err)
	}
	teleopBinary = filepath.Join(dir, "teleop")
	build := exec.Command("go", "build", "-o", teleopBinary, "./cmd/teleop")
	build.Dir = cluster.RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build teleop:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	cluster.Main(m)
}

// env is one test's world: the cluster, a namespace of its own for the
// TeleApps, another for teleop's state, and a Bot API emulator.
type env struct {
	t        testing.TB
	cluster  *cluster.Cluster
	kube     kubernetes.Interface
	tele     versioned.Interface
	emu      *telegramemu.Server
	appsNS   string // where the chat's TeleApps live
	systemNS string // teleop's own state and lease
}

func newEnv(t testing.TB) *env {
	return newEnvWith(t, telegramemu.Options{})
}

// newEnvWith is newEnv with an emulator configured by opts.
func newEnvWith(t testing.TB, opts telegramemu.Options) *env {
	t.Helper()
	return newEnvOn(t, cluster.Shared(t), opts)
}

// newEnvOn is newEnvWith on cluster c.
func newEnvOn(t testing.TB, c *cluster.Cluster, opts telegramemu.Options) *env {
	t.Helper()
	cfg := c.RESTConfig()
	e := &env{
		t:        t,
		cluster:  c,
		kube:     kubernetes.NewForConfigOrDie(cfg),
		tele:     versioned.NewForConfigOrDie(cfg),
		emu:      telegramemu.New(t, opts),
		appsNS:   c.Namespace(t, "e2e-"),
		systemNS: c.Namespace(t, "e2e-sys-"),
	}
	return e
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// teleop is one running teleop process.
type teleop struct {
	cmd        *exec.Cmd
	healthAddr string
	log        *syncBuffer
	done       chan struct{}
}

// baseArgs are the flags every test's teleop gets: this env's cluster,
// namespaces and emulator.
func (e *env) baseArgs() []string {
	return []string{
		"--kubeconfig", e.cluster.Kubeconfig,
		"--namespace", e.systemNS,
		"--watch-namespace", e.appsNS,
		"--telegram-api-endpoint", e.emu.Endpoint(),
		"--telegram-token", e.emu.Token(),
		"--metrics-addr", freeAddr(e.t),
	}
}

// start runs teleop run with baseArgs and extra, and waits until it is ready.
func (e *env) start(extra ...string) *teleop {
	e.t.Helper()
	p := e.spawn("run", append(e.baseArgs(), extra...)...)
	p.waitReady(e.t)
	return p
}

// spawn runs the teleop binary without waiting for it.
func (e *env) spawn(sub string, args ...string) *teleop {
	e.t.Helper()
	p := &teleop{healthAddr: freeAddr(e.t), log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(teleopBinary, append([]string{sub, "--health-addr", p.healthAddr, "--log-level", "debug"}, args...)...)
	p.cmd.Env = append(os.Environ(), "TELEGRAM_BOT_TOKEN=", "KUBECONFIG=")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	require.NoError(e.t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		p.kill()
		if e.t.Failed() {
			e.t.Logf("teleop %v output:\n%s", p.cmd.Args[1:2], p.log.String())
		}
	})
	return p
}

func (p *teleop) waitReady(t testing.TB) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("teleop exited: %s", p.log.String())
		default:
		}
		resp, err := http.Get("http://" + p.healthAddr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	require.NoError(t, err, "teleop did not become ready; output:\n%s", p.log.String())
}

// stop ends teleop gracefully (SIGTERM) and waits for it.
func (p *teleop) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// kill ends teleop at once (SIGKILL), as a crash would.
func (p *teleop) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output; the process writes while tests read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// user is a Telegram user writing in a chat.
type user struct {
	e    *env
	chat telegramemu.Chat
	from telegramemu.User
}

func (e *env) user(id int64, name string) *user {
	return &user{e: e, chat: telegramemu.Chat{ID: id, Type: "private"}, from: telegramemu.User{ID: id, Username: name, FirstName: name}}
}

// inGroup returns the same user writing in a group chat.
func (u *user) inGroup(groupID int64) *user {
	return &user{e: u.e, chat: telegramemu.Chat{ID: groupID, Type: "group", Title: "team"}, from: u.from}
}

// grant binds a ClusterRole to the user in the apps namespace, as an admin
// does with kubectl create rolebinding.
func (u *user) grant(role string) {
	u.e.t.Helper()
	subject := "telegram:" + strconv.FormatInt(u.from.ID, 10)
	out, err := u.e.cluster.Kubectl(ctx(u.e.t), "create", "rolebinding", fmt.Sprintf("%s-%d", role, u.from.ID),
		"--clusterrole="+role, "--user="+subject, "-n", u.e.appsNS)
	require.NoError(u.e.t, err, out)
	// The API server's RBAC cache follows a watch; wait until it knows, as
	// an admin would check with kubectl auth can-i.
	u.e.eventually("the binding to take effect", 10*time.Second, func() (bool, error) {
		out, _ := u.e.cluster.Kubectl(context.Background(), "auth", "can-i", "list", "teleapps.teleop.io", "-n", u.e.appsNS, "--as", subject)
		return strings.TrimSpace(out) == "yes", nil
	})
	// teleop may remember an earlier refusal that long.
	time.Sleep(access.DeniedTTL)
}

// say sends text and waits for the first new message in the chat that
// contains want; it returns that message.
func (u *user) say(text, want string) telegramemu.Message {
	u.e.t.Helper()
	before := len(u.e.emu.Messages(u.chat.ID))
	u.e.emu.SendText(u.chat, u.from, text)
	return u.waitNew(before, want)
}

// waitNew waits for a message after the first `before` ones containing want,
// in any case (a reply may be edited as a rollout moves on).
func (u *user) waitNew(before int, want string) telegramemu.Message {
	u.e.t.Helper()
	var found telegramemu.Message
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		msgs := u.e.emu.Messages(u.chat.ID)
		for _, m := range msgs[min(before, len(msgs)):] {
			if strings.Contains(strings.ToLower(m.Text), strings.ToLower(want)) {
				found = m
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(u.e.t, err, "no message containing %q in chat %d; messages: %s", want, u.chat.ID, texts(u.e.emu.Messages(u.chat.ID)))
	return found
}

// waitText waits until some message of the chat (also edited ones) contains want.
func (u *user) waitText(want string) telegramemu.Message {
	u.e.t.Helper()
	m, err := u.e.emu.WaitMessage(ctx(u.e.t), u.chat.ID, func(m telegramemu.Message) bool { return strings.Contains(m.Text, want) })
	require.NoError(u.e.t, err, "no message containing %q in chat %d; messages: %s", want, u.chat.ID, texts(u.e.emu.Messages(u.chat.ID)))
	return m
}

// press presses the button labelled label on message m and waits for its answer.
func (u *user) press(m telegramemu.Message, label string) {
	u.e.t.Helper()
	for _, row := range m.Buttons {
		for _, b := range row {
			if strings.Contains(b.Text, label) {
				_, callbackID := u.e.emu.PressButton(u.chat, u.from, m.ID, b.Data)
				_, err := u.e.emu.WaitCallbackAnswer(ctx(u.e.t), callbackID)
				require.NoError(u.e.t, err, "button %q was not answered", label)
				return
			}
		}
	}
	u.e.t.Fatalf("no button %q on message %q (buttons %v)", label, m.Text, m.Buttons)
}

func texts(msgs []telegramemu.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "\n  #%d %q", m.ID, m.Text)
	}
	return b.String()
}

// teleApp reads a TeleApp of the apps namespace; nil when it does not exist.
func (e *env) teleApp(name string) *v1alpha1.TeleApp {
	e.t.Helper()
	app, err := e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Get(ctx(e.t), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(e.t, err)
	return app
}

// eventually polls cond until it holds or the timeout passes.
func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, error)) {
	e.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond()
	})
	require.NoError(e.t, err, "waiting for %s", what)
}

// deploymentReplicas reads the owned Deployment's spec.replicas (-1 when absent).
func (e *env) deploymentReplicas(name string) int32 {
	d, err := e.kube.AppsV1().Deployments(e.appsNS).Get(ctx(e.t), name, metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil {
		return -1
	}
	return *d.Spec.Replicas
}
