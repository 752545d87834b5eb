package progress

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
	"github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/telegramemu"
)

const chat = 4242

func parseChat(t *testing.T, s string) int64 {
	id, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return id
}

// teleApp builds default/web at generation 1 with replicas desired.
func teleApp(replicas int32, phase v1alpha1.Phase, ready int32, message string) *v1alpha1.TeleApp {
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Generation: 1},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To(replicas)},
		Status:     v1alpha1.TeleAppStatus{Phase: phase, ReadyReplicas: ready, Message: message, ObservedGeneration: 1},
	}
	if phase == v1alpha1.PhaseDegraded {
		app.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: strings.Fields(message)[0]}}
	}
	return app
}

type trackHarness struct {
	t       *testing.T
	client  *fake.Clientset
	emu     *telegramemu.Server
	msgID   int
	tracked chan struct{}
	cancel  context.CancelFunc
}

// track sends the command's reply and tracks it as Track would be called
// by the /create or /scale handler.
func track(t *testing.T, opts TrackerOptions, op Operation, from, to int32, apps ...*v1alpha1.TeleApp) *trackHarness {
	t.Helper()
	return trackRollout(t, opts, Rollout{Op: op, From: from, To: to}, apps...)
}

// trackRollout tracks ro of default/web.
func trackRollout(t *testing.T, opts TrackerOptions, ro Rollout, apps ...*v1alpha1.TeleApp) *trackHarness {
	t.Helper()
	ro.Namespace, ro.Name = "default", "web"
	emu, messenger := newMessenger(t)
	client := fake.NewSimpleClientset()
	for _, app := range apps {
		require.NoError(t, client.Tracker().Add(app))
	}
	factory := externalversions.NewSharedInformerFactory(client, 0)
	tracker, err := NewTracker(factory.Teleop().V1alpha1().TeleApps(), messenger, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	msgID, err := messenger.Send(ctx, bot.Reply{ChatID: chat, Text: "On it."})
	require.NoError(t, err)
	h := &trackHarness{t: t, client: client, emu: emu, msgID: msgID, tracked: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(h.tracked)
		tracker.Track(ctx, chat, msgID, ro)
	}()
	return h
}

func (h *trackHarness) set(app *v1alpha1.TeleApp) {
	h.t.Helper()
	_, err := h.client.TeleopV1alpha1().TeleApps("default").Update(context.Background(), app, metav1.UpdateOptions{})
	if err != nil {
		_, err = h.client.TeleopV1alpha1().TeleApps("default").Create(context.Background(), app, metav1.CreateOptions{})
	}
	require.NoError(h.t, err)
}

// shows waits until the reply reads text (a prefix of it) and returns it.
func (h *trackHarness) shows(prefix string) telegramemu.Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := h.emu.WaitMessage(ctx, chat, func(m telegramemu.Message) bool {
		return m.ID == h.msgID && strings.HasPrefix(m.Text, prefix)
	})
	require.NoError(h.t, err)
	return m
}

func (h *trackHarness) ended() bool {
	select {
	case <-h.tracked:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

var fast = TrackerOptions{EditInterval: time.Millisecond, GiveUpAfter: time.Minute}

func TestTrackScaleUntilReady(t *testing.T) {
	scaled := teleApp(5, v1alpha1.PhaseProgressing, 3, "")
	scaled.Generation, scaled.Status.ObservedGeneration = 2, 2
	h := track(t, fast, OperationScale, 3, 5, teleApp(3, v1alpha1.PhaseReady, 3, ""))

	h.shows("⏳ Scaling <b>web</b> 3 → 5… 3/5 ready") // the cache is behind the command: not "ready 3/3"
	h.set(scaled)
	scaled.Status.ReadyReplicas = 4
	h.set(scaled)
	h.shows("⏳ Scaling <b>web</b> 3 → 5… 4/5 ready")
	scaled.Status.Phase, scaled.Status.ReadyReplicas = v1alpha1.PhaseReady, 5
	h.set(scaled)
	h.shows("✅ <b>web</b> is ready: 5/5 in ")
	assert.True(t, h.ended(), "tracking ends with the rollout")
}

func TestTrackCreateUntilFailure(t *testing.T) {
	h := track(t, fast, OperationCreate, 0, 2)

	h.shows("⏳ Created <b>web</b>… 0/2 ready") // not in the cache yet: not "deleted"
	h.set(teleApp(2, v1alpha1.PhasePending, 0, ""))
	h.shows("⏳ Created <b>web</b> (nginx:1.27)… 0/2 ready")
	h.set(teleApp(2, v1alpha1.PhaseDegraded, 0, "ImagePullBackOff on web-7c9f4-abcde"))
	h.shows("❌ <b>web</b> did not come up: ImagePullBackOff on web-7c9f4-abcde — check that the image <code>nginx:1.27</code> exists")
	assert.True(t, h.ended())
}

func TestTrackDeleted(t *testing.T) {
	h := track(t, fast, OperationScale, 3, 5, teleApp(5, v1alpha1.PhaseProgressing, 3, ""))
	h.shows("⏳ Scaling <b>web</b> 3 → 5… 3/5 ready")
	require.NoError(t, h.client.TeleopV1alpha1().TeleApps("default").Delete(context.Background(), "web", metav1.DeleteOptions{}))
	h.shows("🗑 <b>web</b> was deleted.")
	assert.True(t, h.ended())
}

func TestTrackGivesUp(t *testing.T) {
	h := track(t, TrackerOptions{EditInterval: time.Millisecond, GiveUpAfter: 200 * time.Millisecond},
		OperationScale, 3, 5, teleApp(5, v1alpha1.PhaseProgressing, 3, ""))
	h.shows("⏳ <b>web</b>: 3/5 ready after 0 s; I stopped watching. /status web shows more.")
	assert.True(t, h.ended())
}

func TestTrackEditsOnlyOnChangeAndNotTooOften(t *testing.T) {
	h := track(t, TrackerOptions{EditInterval: time.Hour, GiveUpAfter: 2 * time.Hour},
		OperationScale, 3, 5, teleApp(5, v1alpha1.PhaseProgressing, 3, ""))
	first := h.shows("⏳ Scaling <b>web</b> 3 → 5… 3/5 ready")
	require.Equal(t, 1, first.Edits)

	app := teleApp(5, v1alpha1.PhaseProgressing, 3, "3/5 replicas ready")
	h.set(app) // the words do not change: no edit
	for ready := int32(4); ready <= 5; ready++ {
		app.Status.ReadyReplicas = ready
		h.set(app) // changes within the interval: no edit yet
	}
	assert.Never(t, func() bool { return h.emu.Messages(chat)[0].Edits > 1 }, 300*time.Millisecond, 10*time.Millisecond)
	h.cancel()
	assert.True(t, h.ended(), "a cancelled context ends tracking")
}

func TestTrackDeploy(t *testing.T) {
	undo := &bot.Button{Text: "↩️ Roll back", Data: "rb:7"}
	deployed := func(phase v1alpha1.Phase, replicas, updated, ready int32, message string) *v1alpha1.TeleApp {
		app := teleApp(3, phase, ready, message)
		app.Spec.Image = "nginx:broken"
		app.Generation, app.Status.ObservedGeneration = 2, 2
		app.Status.Replicas, app.Status.UpdatedReplicas = replicas, updated
		return app
	}
	t.Run("stuck, with the undo button", func(t *testing.T) {
		h := trackRollout(t, fast, Rollout{Op: OperationDeploy, To: 3, Image: "nginx:broken", Generation: 2, Undo: undo},
			teleApp(3, v1alpha1.PhaseReady, 3, "")) // the cache is behind: generation 1
		h.shows("⏳ Rolling out <code>nginx:broken</code> to <b>web</b>…")
		h.set(deployed(v1alpha1.PhaseProgressing, 4, 1, 3, ""))
		h.shows("⏳ Rolling out <code>nginx:broken</code> to <b>web</b>… 1/3 updated, 3 ready, 3 old")
		h.set(deployed(v1alpha1.PhaseDegraded, 4, 1, 3, "ImagePullBackOff on web-7c9f4-abcde"))
		m := h.shows("❌ <b>web</b> is stuck: ImagePullBackOff on web-7c9f4-abcde — check that the image <code>nginx:broken</code> exists")
		require.Len(t, m.Buttons, 1)
		assert.Equal(t, "rb:7", m.Buttons[0][0].Data)
		assert.True(t, h.ended())
	})
	t.Run("ready", func(t *testing.T) {
		h := trackRollout(t, fast, Rollout{Op: OperationDeploy, To: 3, Image: "nginx:broken", Generation: 2, Undo: undo})
		h.set(deployed(v1alpha1.PhaseReady, 3, 3, 3, ""))
		m := h.shows("✅ <b>web</b> is on <code>nginx:broken</code>: 3/3 in ")
		assert.Empty(t, m.Buttons, "nothing to undo")
		assert.True(t, h.ended())
	})
	t.Run("overtaken by another deploy", func(t *testing.T) {
		h := trackRollout(t, fast, Rollout{Op: OperationDeploy, To: 3, Image: "nginx:1.28", Generation: 2})
		h.set(deployed(v1alpha1.PhaseProgressing, 3, 0, 3, ""))
		h.shows("ℹ️ The image of <b>web</b> was changed again, to <code>nginx:broken</code>; I stopped following <code>nginx:1.28</code>.")
		assert.True(t, h.ended())
	})
	t.Run("restart", func(t *testing.T) {
		h := trackRollout(t, fast, Rollout{Op: OperationRestart, To: 3, Generation: 2})
		app := deployed(v1alpha1.PhaseReady, 3, 3, 3, "")
		h.set(app)
		h.shows("✅ <b>web</b> restarted: 3/3 in ")
		assert.True(t, h.ended())
	})
}

func TestTrackerFollowsAtMostMaxTrackedAndStopsWithRun(t *testing.T) {
	emu, messenger := newMessenger(t)
	client := fake.NewSimpleClientset(teleApp(5, v1alpha1.PhaseProgressing, 3, ""))
	factory := externalversions.NewSharedInformerFactory(client, 0)
	tracker, err := NewTracker(factory.Teleop().V1alpha1().TeleApps(), messenger,
		TrackerOptions{EditInterval: time.Millisecond, GiveUpAfter: time.Hour, MaxTracked: 2})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	runCtx, stopRun := context.WithCancel(ctx)
	go tracker.Run(runCtx)

	ended := make([]chan struct{}, 3)
	for i := range ended {
		msgID, err := messenger.Send(ctx, bot.Reply{ChatID: chat, Text: "On it."})
		require.NoError(t, err)
		ended[i] = make(chan struct{})
		go func() {
			defer close(ended[i])
			tracker.Track(ctx, chat, msgID, Rollout{Op: OperationScale, Namespace: "default", Name: "web", From: 3, To: 5})
		}()
		_, err = emu.WaitMessage(ctx, chat, func(m telegramemu.Message) bool { return m.ID == msgID && strings.HasPrefix(m.Text, "⏳") })
		require.NoError(t, err)
	}
	select {
	case <-ended[0]:
	case <-time.After(5 * time.Second):
		t.Fatal("the oldest tracking did not end when a third started")
	}
	for i := 1; i < len(ended); i++ {
		select {
		case <-ended[i]:
			t.Fatalf("tracking %d ended early", i)
		default:
		}
	}

	stopRun()
	for i := 1; i < len(ended); i++ {
		select {
		case <-ended[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("tracking %d outlived Run", i)
		}
	}
}
