package progress_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

func TestMain(m *testing.M) { cluster.Main(m) }

const waitTimeout = 90 * time.Second

// world is one test's namespace on the shared control plane, with the
// operator running for it, and a Bot API emulator with Telegram's limits.
type world struct {
	t    *testing.T
	c    *cluster.Cluster
	tele versioned.Interface
	ns   string
	emu  *telegramemu.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := cluster.Shared(t)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ns := c.Namespace(t, "announce-test-")

	clients, err := operator.NewClients(c.RESTConfig(), operator.Options{})
	require.NoError(t, err)
	op, err := operator.New(clients, operator.Options{Namespace: ns, Workers: 4})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return &world{t: t, c: c, tele: tele, ns: ns, emu: telegramemu.New(t, telegramemu.Options{})}
}

// announcer is one run of the announcer wired as cmd wires it: the real bot
// transport talking to the emulator, the TeleApp cache slimmed as the operator's.
type announcer struct {
	stop func()
}

func (w *world) startAnnouncer(chats ...string) *announcer {
	w.t.Helper()
	tg, err := bot.New(bot.Config{Token: w.emu.Token(), Endpoint: w.emu.Endpoint(), RequestTimeout: 10 * time.Second})
	require.NoError(w.t, err)
	factory := operator.NewTeleAppInformers(w.tele, w.ns, 0)
	recorder := record.NewFakeRecorder(10000)
	c, err := announce.NewController(w.tele, factory.Teleop().V1alpha1().TeleApps(), progress.NewNotifier(tg.Messenger()),
		recorder, announce.Options{NotifyChats: chats, Settle: time.Second})
	require.NoError(w.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 16) }()
	a := &announcer{}
	stopped := false
	a.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		assert.NoError(w.t, <-done)
		tg.Close()
		factory.Shutdown()
	}
	w.t.Cleanup(a.stop)
	return a
}

func (w *world) create(name, image string, replicas int32, chats ...string) {
	w.t.Helper()
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns},
		Spec:       v1alpha1.TeleAppSpec{Image: image, Replicas: ptr.To(replicas)},
	}
	if len(chats) > 0 {
		app.Spec.Notify = &v1alpha1.Notify{Chats: chats}
	}
	_, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Create(context.Background(), app, metav1.CreateOptions{})
	require.NoError(w.t, err)
}

func (w *world) kubectl(args ...string) {
	w.t.Helper()
	_, err := w.c.Kubectl(context.Background(), append(args, "-n", w.ns)...)
	require.NoError(w.t, err)
}

// notices are the announcements chat received, one per entry, coalesced
// messages split apart.
func (w *world) notices(chat int64) []string {
	var out []string
	for _, m := range w.emu.Messages(chat) {
		out = append(out, strings.Split(m.Text, "\n\n")...)
	}
	return out
}

// waitNotices waits until chat has received every one of want (each may be
// a prefix), and returns all it received.
func (w *world) waitNotices(chat int64, want ...string) []string {
	w.t.Helper()
	var got []string
	require.Eventually(w.t, func() bool {
		got = w.notices(chat)
		for _, prefix := range want {
			if count(got, prefix) == 0 {
				return false
			}
		}
		return true
	}, waitTimeout, 50*time.Millisecond, "chat %d waits for %q", chat, want)
	return got
}

// count counts the notices that begin with prefix.
func count(notices []string, prefix string) int {
	n := 0
	for _, s := range notices {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// assertEachOnce checks that no notice was received twice.
func assertEachOnce(t *testing.T, notices []string) {
	t.Helper()
	seen := map[string]int{}
	for _, n := range notices {
		seen[n]++
	}
	for n, times := range seen {
		assert.Equal(t, 1, times, "announced %d times: %s", times, n)
	}
}

func TestLifecycleMadeWithKubectlIsAnnounced(t *testing.T) {
	w := newWorld(t)
	w.startAnnouncer()
	const chat = 5001
	w.create("web", "nginx:1.27", 2, strconv.Itoa(chat))

	ready := fmt.Sprintf("✅ <b>web</b> is ready: 2/2 (nginx:1.27) in %s", w.ns)
	w.waitNotices(chat, ready)
	w.kubectl("scale", "tapp/web", "--replicas=4")
	scaled := fmt.Sprintf("📈 <b>web</b> scaled 2 → 4 in %s by kubectl-scale", w.ns)
	w.waitNotices(chat, scaled)
	w.kubectl("delete", "tapp/web", "--wait=false")
	deleted := fmt.Sprintf("🗑 <b>web</b> deleted from %s", w.ns)
	got := w.waitNotices(chat, deleted)

	assert.Equal(t, 1, count(got, ready), "Ready 2/2 once: %q", got)
	assert.Equal(t, 1, count(got, scaled), "%q", got)
	assert.Equal(t, deleted, got[len(got)-1], "deletion is the last word")
	assertEachOnce(t, got)
	require.Eventually(t, func() bool {
		_, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Get(context.Background(), "web", metav1.GetOptions{})
		return err != nil
	}, waitTimeout, 100*time.Millisecond, "the finalizer is released after the deletion was announced")
	assert.Equal(t, 0, w.emu.Stats().RateLimited)
}

func TestBrokenImageIsAnnouncedWithTheReason(t *testing.T) {
	w := newWorld(t)
	w.startAnnouncer()
	const chat = 5002
	w.create("web", "nginx:broken", 1, strconv.Itoa(chat))

	got := w.waitNotices(chat, "⚠️ <b>web</b> is degraded in "+w.ns+": ImagePullBackOff on web-")
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "check that the image <code>nginx:broken</code> exists")
}

func TestErrorsAPersonMustFixSayWhatToDo(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(w *world, kube kubernetes.Interface)
		want    string
	}{
		{
			name: "quota exceeded",
			prepare: func(w *world, kube kubernetes.Interface) {
				_, err := kube.CoreV1().ResourceQuotas(w.ns).Create(context.Background(), &corev1.ResourceQuota{
					ObjectMeta: metav1.ObjectMeta{Name: "no-deployments"},
					Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/deployments.apps": resource.MustParse("0")}},
				}, metav1.CreateOptions{})
				require.NoError(t, err)
			},
			want: "the namespace's ResourceQuota is used up",
		},
		{
			name: "a Deployment of the same name owned by someone else",
			prepare: func(w *world, kube kubernetes.Interface) {
				labels := map[string]string{"app": "theirs"}
				_, err := kube.AppsV1().Deployments(w.ns).Create(context.Background(), &appsv1.Deployment{
					ObjectMeta: metav1.ObjectMeta{Name: "web"},
					Spec: appsv1.DeploymentSpec{
						Selector: &metav1.LabelSelector{MatchLabels: labels},
						Template: corev1.PodTemplateSpec{
							ObjectMeta: metav1.ObjectMeta{Labels: labels},
							Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27"}}},
						},
					},
				}, metav1.CreateOptions{})
				require.NoError(t, err)
			},
			want: "a Deployment or Service named web that teleop does not own is in the way",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			kube, err := kubernetes.NewForConfig(w.c.RESTConfig())
			require.NoError(t, err)
			tt.prepare(w, kube)
			w.startAnnouncer()
			chat := int64(5100 + i)
			w.create("web", "nginx:1.27", 1, strconv.FormatInt(chat, 10))
			got := w.waitNotices(chat, "❌ <b>web</b> failed in "+w.ns+": ")
			require.Len(t, got, 1)
			assert.Contains(t, got[0], tt.want)
		})
	}
}

func TestChangeFromAChatNamesThePerson(t *testing.T) {
	w := newWorld(t)
	w.startAnnouncer()
	const chat = 5003
	w.create("web", "nginx:1.27", 1, strconv.Itoa(chat))
	w.waitNotices(chat, "✅ <b>web</b> is ready: 1/1")

	// What operator/apps does for "/scale web 3": the change and who made it, in one write.
	patch := `{"metadata":{"annotations":{"teleop.io/last-changed-by":"telegram:123 (@alice)","teleop.io/last-command":"/scale web 3"}},"spec":{"replicas":3}}`
	_, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Patch(context.Background(), "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "teleop-apps"})
	require.NoError(t, err)
	w.waitNotices(chat, fmt.Sprintf("📈 <b>web</b> scaled 1 → 3 in %s by telegram:123 (@alice)", w.ns))

	w.kubectl("scale", "tapp/web", "--replicas=2")
	w.waitNotices(chat, fmt.Sprintf("📉 <b>web</b> scaled 3 → 2 in %s by kubectl-scale", w.ns))
}

func TestRestartBetweenTransitionAndSendAnnouncesOnce(t *testing.T) {
	w := newWorld(t)
	const chat = 5004
	// Telegram is down while the first announcer runs: it sees the
	// transition but cannot send it.
	w.emu.Fail(telegramemu.Fault{Method: "sendMessage", Status: 502, Until: time.Now().Add(time.Hour)})
	first := w.startAnnouncer()
	w.create("web", "nginx:1.27", 1, strconv.Itoa(chat))
	require.Eventually(t, func() bool { return w.emu.Stats().Requests["sendMessage"] > 0 }, waitTimeout, 50*time.Millisecond)
	first.stop()

	w.emu.Fail(telegramemu.Fault{Method: "sendMessage", Status: 502, Until: time.Now()}) // Telegram is back
	w.startAnnouncer()
	ready := "✅ <b>web</b> is ready: 1/1"
	w.waitNotices(chat, ready)
	time.Sleep(2 * time.Second) // room for a duplicate to show up
	assert.Equal(t, 1, count(w.notices(chat), ready))
}

func TestFiftyAppsFiveChatsWithinTelegramsLimits(t *testing.T) {
	w := newWorld(t)
	chats := []int64{6001, 6002, 6003, -6004, -6005} // three private chats, two groups
	var ids []string
	for _, c := range chats {
		ids = append(ids, strconv.FormatInt(c, 10))
	}
	w.startAnnouncer(ids...)
	const apps = 50
	for i := range apps {
		w.create(fmt.Sprintf("app-%02d", i), "nginx:1.27", 1)
	}
	var ready, scaled []string
	for i := range apps {
		ready = append(ready, fmt.Sprintf("✅ <b>app-%02d</b> is ready: 1/1", i))
		scaled = append(scaled, fmt.Sprintf("📈 <b>app-%02d</b> scaled 1 → 2", i))
	}
	for _, c := range chats {
		w.waitNotices(c, ready...)
	}
	for i := range apps {
		w.kubectl("scale", fmt.Sprintf("tapp/app-%02d", i), "--replicas=2")
	}
	for _, c := range chats {
		got := w.waitNotices(c, scaled...)
		assertEachOnce(t, got)
		for _, prefix := range append(ready, scaled...) {
			assert.Equal(t, 1, count(got, prefix), "chat %d: %s", c, prefix)
		}
		assert.Less(t, len(w.emu.Messages(c)), len(got), "chat %d: notices coalesced into fewer messages", c)
	}
	assert.Zero(t, w.emu.Stats().TooManyRequests, "no 429 from the emulator")
}

func TestTelegramFailingForAWhileLosesAndDuplicatesNothing(t *testing.T) {
	w := newWorld(t)
	const chat = 6101
	w.startAnnouncer(strconv.Itoa(chat))
	w.emu.Fail(telegramemu.Fault{Method: "sendMessage", Status: 429, RetryAfter: 1, Until: time.Now().Add(4 * time.Second)})
	for i := range 10 {
		w.create(fmt.Sprintf("app-%02d", i), "nginx:1.27", 1)
	}
	time.Sleep(4 * time.Second)
	w.emu.Fail(telegramemu.Fault{Method: "sendMessage", Status: 503, Until: time.Now().Add(3 * time.Second)})
	for i := 10; i < 20; i++ {
		w.create(fmt.Sprintf("app-%02d", i), "nginx:1.27", 1)
	}
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("✅ <b>app-%02d</b> is ready: 1/1", i))
	}
	got := w.waitNotices(chat, want...)
	assertEachOnce(t, got)
	assert.Positive(t, w.emu.Stats().FaultsInjected, "the faults were hit")
}

func TestUnreachableChatDoesNotHoldTheOthers(t *testing.T) {
	w := newWorld(t)
	w.emu.MarkBlocked(6201)
	w.startAnnouncer("6201", "6202")
	w.create("web", "nginx:1.27", 1)
	w.waitNotices(6202, "✅ <b>web</b> is ready: 1/1")
	require.Eventually(t, func() bool {
		app, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Get(context.Background(), "web", metav1.GetOptions{})
		return err == nil && strings.Contains(app.Annotations[announce.AnnotationAnnounced], `"phase":"Ready"`)
	}, waitTimeout, 50*time.Millisecond, "recorded as announced")
}

func TestLiveProgressOfAScale(t *testing.T) {
	w := newWorld(t)
	const chat = 6301
	w.create("web", "nginx:1.27", 1)
	tg, err := bot.New(bot.Config{Token: w.emu.Token(), Endpoint: w.emu.Endpoint()})
	require.NoError(t, err)
	defer tg.Close()
	factory := externalversions.NewSharedInformerFactoryWithOptions(w.tele, 0, externalversions.WithNamespace(w.ns))
	tracker, err := progress.NewTracker(factory.Teleop().V1alpha1().TeleApps(), tg.Messenger(), progress.TrackerOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	require.Eventually(t, func() bool {
		app, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && app.Status.Phase == v1alpha1.PhaseReady
	}, waitTimeout, 50*time.Millisecond)

	// What the /scale handler does: change, reply, track the reply.
	w.kubectl("scale", "tapp/web", "--replicas=5")
	msgID, err := tg.Messenger().Send(ctx, bot.Reply{ChatID: chat, Text: "Scaling web 1 → 5…"})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tracker.Track(ctx, chat, msgID, progress.Rollout{Op: progress.OperationScale, Namespace: w.ns, Name: "web", From: 1, To: 5})
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("tracking did not end")
	}
	msgs := w.emu.Messages(chat)
	require.Len(t, msgs, 1)
	assert.Regexp(t, `^✅ <b>web</b> is ready: 5/5 in \d+ s$`, msgs[0].Text)
	slog.Info("live progress", "edits", msgs[0].Edits)
}
