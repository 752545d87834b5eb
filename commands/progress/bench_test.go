package progress_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// The mix of the fan-out benchmark: Telegram allows 1 message a second per
// private chat, 20 a minute per group, and 30 a second in all.
const (
	benchApps         = 1000
	benchPrivateChats = 80
	benchGroupChats   = 20
	telegramGlobal    = 30.0 // messages a second
)

// allowedRate is what Telegram allows for the mix: the sum of the per-chat
// limits, capped by the global one.
func allowedRate() float64 {
	return min(telegramGlobal, benchPrivateChats*1.0+benchGroupChats/3.0)
}

func benchChats() []int64 {
	var chats []int64
	for i := range benchPrivateChats {
		chats = append(chats, int64(700001+i))
	}
	for i := range benchGroupChats {
		chats = append(chats, -int64(800001+i))
	}
	return chats
}

// BenchmarkFanOut announces 1,000 transitions (every TeleApp turning Ready)
// to 100 chats through the real bot sender to the emulator, on the real API
// server, and compares the message rate with what Telegram allows for the
// mix and with the bare sender sending the same messages (the baseline,
// measured in the same run). It then measures, with the outbox idle, the
// time from a status change to the first message. Run it with
// -benchtime=1x: one iteration sends about 2,000 messages.
func BenchmarkFanOut(b *testing.B) {
	c := cluster.Shared(b)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(b, err)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(b, err)
	chats := benchChats()
	var chatIDs []string
	for _, id := range chats {
		chatIDs = append(chatIDs, strconv.FormatInt(id, 10))
	}

	for b.Loop() {
		ns, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "announce-bench-"},
		}, metav1.CreateOptions{})
		require.NoError(b, err)
		emu := telegramemu.New(b, telegramemu.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		startBenchAnnouncer(ctx, b, tele, emu, ns.Name, chatIDs)
		apps := createAdopted(ctx, b, tele, ns.Name)

		start := time.Now()
		setAllReady(ctx, b, tele, apps)
		messages, notices := waitDelivered(b, emu, chats, benchApps)
		elapsed := time.Since(start)
		rate := float64(messages) / elapsed.Seconds()

		latency := idleLatency(ctx, b, tele, emu, apps[0], chats[0])
		baseline := bareSenderRate(b, chats, messages)
		stats := emu.Stats()
		cancel()
		_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})

		b.ReportMetric(float64(notices)/elapsed.Seconds(), "notices/s")
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(rate/allowedRate(), "of-telegram-allowed")
		b.ReportMetric(rate/baseline, "of-bare-sender")
		b.ReportMetric(float64(stats.TooManyRequests), "429s")
		b.ReportMetric(float64(latency.Milliseconds()), "first-msg-ms")
		b.Logf("%d transitions to %d chats: %d notices in %d messages in %s (%.1f msgs/s; Telegram allows %.0f/s for the mix; bare sender %.1f/s); idle status change to first message %s; %d 429s",
			benchApps, len(chats), notices, messages, elapsed.Round(time.Millisecond), rate, allowedRate(), baseline, latency.Round(time.Millisecond), stats.TooManyRequests)
	}
}

// startBenchAnnouncer runs the announcer as cmd does, with no settle time,
// so the figures are those of the delivery.
func startBenchAnnouncer(ctx context.Context, b *testing.B, tele versioned.Interface, emu *telegramemu.Server, ns string, chats []string) {
	tg, err := bot.New(bot.Config{Token: emu.Token(), Endpoint: emu.Endpoint()})
	require.NoError(b, err)
	context.AfterFunc(ctx, tg.Close)
	factory := externalversions.NewSharedInformerFactoryWithOptions(tele, 0, externalversions.WithNamespace(ns))
	announcer, err := announce.NewController(tele, factory.Teleop().V1alpha1().TeleApps(), progress.NewNotifier(tg.Messenger()),
		record.NewFakeRecorder(100000), announce.Options{NotifyChats: chats})
	require.NoError(b, err)
	factory.Start(ctx.Done())
	go func() { _ = announcer.Run(ctx, 64) }()
}

// createAdopted creates the TeleApps and waits until the announcer has
// adopted each (finalizer and baseline record), so that the measured part
// is the announcing only.
func createAdopted(ctx context.Context, b *testing.B, tele versioned.Interface, ns string) []*v1alpha1.TeleApp {
	apps := make([]*v1alpha1.TeleApp, benchApps)
	parallel(benchApps, func(i int) {
		app, err := tele.TeleopV1alpha1().TeleApps(ns).Create(ctx, &v1alpha1.TeleApp{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i), Namespace: ns},
			Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](1)},
		}, metav1.CreateOptions{})
		assert.NoError(b, err)
		apps[i] = app
	})
	require.Eventually(b, func() bool {
		list, err := tele.TeleopV1alpha1().TeleApps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, app := range list.Items {
			if _, ok := app.Annotations[announce.AnnotationAnnounced]; !ok {
				return false
			}
		}
		return len(list.Items) == benchApps
	}, 5*time.Minute, 200*time.Millisecond)
	return apps
}

// setAllReady writes the status of a Ready TeleApp to each, as the operator would.
func setAllReady(ctx context.Context, b *testing.B, tele versioned.Interface, apps []*v1alpha1.TeleApp) {
	parallel(len(apps), func(i int) {
		setStatus(ctx, b, tele, apps[i], v1alpha1.PhaseReady, 1)
	})
}

// setStatus may run on any goroutine: it reports failures without stopping.
func setStatus(ctx context.Context, b *testing.B, tele versioned.Interface, app *v1alpha1.TeleApp, phase v1alpha1.Phase, ready int32) {
	latest, err := tele.TeleopV1alpha1().TeleApps(app.Namespace).Get(ctx, app.Name, metav1.GetOptions{})
	if !assert.NoError(b, err) {
		return
	}
	latest.Status = v1alpha1.TeleAppStatus{Phase: phase, ReadyReplicas: ready, Replicas: 1, ObservedGeneration: latest.Generation,
		Message: fmt.Sprintf("ImagePullBackOff on %s-7c9f4-abcde", app.Name)}
	_, err = tele.TeleopV1alpha1().TeleApps(app.Namespace).UpdateStatus(ctx, latest, metav1.UpdateOptions{})
	assert.NoError(b, err)
}

// waitDelivered waits until every chat has perNotices notices and returns
// the messages and notices delivered in all.
func waitDelivered(b *testing.B, emu *telegramemu.Server, chats []int64, perChat int) (messages, notices int) {
	require.Eventually(b, func() bool {
		messages, notices = 0, 0
		for _, chat := range chats {
			msgs := emu.Messages(chat)
			messages += len(msgs)
			for _, m := range msgs {
				notices += strings.Count(m.Text, "\n\n") + 1
			}
		}
		return notices >= perChat*len(chats)
	}, 15*time.Minute, 100*time.Millisecond)
	return messages, notices
}

// idleLatency is the time from a status change to its first message, with
// the outbox idle.
func idleLatency(ctx context.Context, b *testing.B, tele versioned.Interface, emu *telegramemu.Server, app *v1alpha1.TeleApp, chat int64) time.Duration {
	time.Sleep(2 * time.Second) // let every chat's pace run out
	before := len(emu.Messages(chat))
	start := time.Now()
	setStatus(ctx, b, tele, app, v1alpha1.PhaseDegraded, 0)
	require.Eventually(b, func() bool { return len(emu.Messages(chat)) > before }, time.Minute, time.Millisecond)
	return time.Since(start)
}

// bareSenderRate queues messages messages at once, spread over the chats as
// the announcer's were, straight into a fresh bot sender talking to a fresh
// emulator, and returns its rate: what the outbox alone achieves for the mix.
// Each is too long to be coalesced with another.
func bareSenderRate(b *testing.B, chats []int64, messages int) float64 {
	emu := telegramemu.New(b, telegramemu.Options{})
	tg, err := bot.New(bot.Config{Token: emu.Token(), Endpoint: emu.Endpoint()})
	require.NoError(b, err)
	defer tg.Close()
	perChat := messages / len(chats)
	text := strings.Repeat("x", bot.MaxTextLength/2+1)
	var wg sync.WaitGroup
	start := time.Now()
	for _, chat := range chats {
		for range perChat {
			wg.Go(func() {
				_, err := tg.Messenger().Send(context.Background(), bot.Reply{ChatID: chat, Text: text})
				assert.NoError(b, err)
			})
		}
	}
	wg.Wait()
	return float64(perChat*len(chats)) / time.Since(start).Seconds()
}

// parallel runs f(0..n-1) on a few goroutines.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
