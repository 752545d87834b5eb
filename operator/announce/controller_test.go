package announce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
	"github.com/teleop/teleop/operator/generated/informers/externalversions"
)

const ns = "default"

// --- TeleApp builders ---

type appOption func(*v1alpha1.TeleApp)

func teleApp(name string, opts ...appOption) *v1alpha1.TeleApp {
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Generation: 1},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](3)},
	}
	for _, o := range opts {
		o(app)
	}
	return app
}

func withChats(chats ...string) appOption {
	return func(a *v1alpha1.TeleApp) { a.Spec.Notify = &v1alpha1.Notify{Chats: chats} }
}

func withStatus(phase v1alpha1.Phase, ready int32, message string) appOption {
	return func(a *v1alpha1.TeleApp) {
		a.Status.Phase, a.Status.ReadyReplicas, a.Status.Message = phase, ready, message
		a.Status.ObservedGeneration = a.Generation
	}
}

func withAnnounced(phase v1alpha1.Phase, replicas int32) appOption {
	return func(a *v1alpha1.TeleApp) {
		a.Finalizers = append(a.Finalizers, Finalizer)
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Annotations[AnnotationAnnounced] = announced{Phase: phase, Replicas: replicas, Generation: a.Generation}.encode()
	}
}

func deleting() appOption {
	return func(a *v1alpha1.TeleApp) { a.DeletionTimestamp = ptr.To(metav1.Now()) }
}

// --- a Notifier that keeps what each chat was told ---

type chatLog struct {
	mu   sync.Mutex
	got  map[string][]string
	fail map[string]error
}

func newChatLog() *chatLog { return &chatLog{got: map[string][]string{}, fail: map[string]error{}} }

func (l *chatLog) Notify(_ context.Context, chat string, n Notice) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fail[chat]; err != nil {
		return err
	}
	l.got[chat] = append(l.got[chat], summary(n))
	return nil
}

func (l *chatLog) failChat(chat string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail[chat] = err
}

func (l *chatLog) told() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for chat, got := range l.got {
		out[chat] = append([]string(nil), got...)
	}
	return out
}

// summary is a notice in a few words, for comparing.
func summary(n Notice) string {
	switch n.Kind {
	case KindScaled:
		return fmt.Sprintf("%s/%s scaled %d→%d by %s", n.Namespace, n.Name, n.FromReplicas, n.ToReplicas, n.Actor)
	case KindRestarted:
		return fmt.Sprintf("%s/%s restarted by %s", n.Namespace, n.Name, n.Actor)
	case KindDegraded, KindFailed:
		return fmt.Sprintf("%s/%s %s: %s (pod %s)", n.Namespace, n.Name, n.Kind, n.Message, n.Pod)
	default:
		return fmt.Sprintf("%s/%s %s %d/%d", n.Namespace, n.Name, n.Kind, n.Ready, n.Desired)
	}
}

// --- the harness: a controller on a fake clientset, synced step by step ---

type harness struct {
	t        *testing.T
	client   *fake.Clientset
	c        *Controller
	clock    *clocktesting.FakeClock
	chats    *chatLog
	recorder *record.FakeRecorder
	indexer  cache.Indexer
}

func newHarness(t *testing.T, opts Options, apps ...*v1alpha1.TeleApp) *harness {
	t.Helper()
	h := &harness{t: t, client: fake.NewSimpleClientset(), chats: newChatLog(), recorder: record.NewFakeRecorder(100)}
	for _, app := range apps {
		require.NoError(t, h.client.Tracker().Add(app))
	}
	h.clock = clocktesting.NewFakeClock(time.Now())
	opts.Clock = h.clock
	h.start(opts)
	return h
}

// start starts a controller (again) on the same cluster, as a restart would.
func (h *harness) start(opts Options) {
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	factory := externalversions.NewSharedInformerFactory(h.client, 0)
	c, err := NewController(h.client, factory.Teleop().V1alpha1().TeleApps(), h.chats, h.recorder, opts)
	require.NoError(h.t, err)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	h.c = c
	h.indexer = factory.Teleop().V1alpha1().TeleApps().Informer().GetIndexer()
}

func (h *harness) get(name string) *v1alpha1.TeleApp {
	app, err := h.client.TeleopV1alpha1().TeleApps(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(h.t, err)
	return app
}

// sync runs one reconcile of name once the informer saw its latest state.
func (h *harness) sync(name string) error {
	h.t.Helper()
	want, err := h.client.TeleopV1alpha1().TeleApps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		require.NoError(h.t, err)
	}
	require.Eventually(h.t, func() bool {
		got, err := h.c.lister.TeleApps(ns).Get(name)
		if want == nil {
			return apierrors.IsNotFound(err)
		}
		return err == nil && equality.Semantic.DeepEqual(got, want)
	}, 5*time.Second, time.Millisecond)
	return h.c.sync(context.Background(), cache.ObjectName{Namespace: ns, Name: name})
}

// syncDeletion is sync for the deletions queue.
func (h *harness) syncDeletion(name string) error {
	h.t.Helper()
	require.NoError(h.t, h.sync(name), "a change sync hands a deletion over")
	return h.c.syncDeletion(context.Background(), cache.ObjectName{Namespace: ns, Name: name})
}

func (h *harness) mustSync(name string) {
	h.t.Helper()
	require.NoError(h.t, h.sync(name))
}

func (h *harness) update(name string, change appOption) {
	app := h.get(name)
	change(app)
	_, err := h.client.TeleopV1alpha1().TeleApps(ns).Update(context.Background(), app, metav1.UpdateOptions{})
	require.NoError(h.t, err)
}

func (h *harness) setStatus(name string, phase v1alpha1.Phase, ready int32, message string) {
	h.update(name, withStatus(phase, ready, message))
}

func (h *harness) scale(name string, replicas int32) {
	h.update(name, func(a *v1alpha1.TeleApp) { a.Spec.Replicas = &replicas; a.Generation++ })
}

func (h *harness) record(name string) announced {
	a, ok, err := recorded(h.get(name))
	require.NoError(h.t, err)
	require.True(h.t, ok, "no %s annotation", AnnotationAnnounced)
	return a
}

func TestAnnouncesTransitionsOnce(t *testing.T) {
	tests := []struct {
		name   string
		app    *v1alpha1.TeleApp
		opts   Options
		steps  func(h *harness)
		want   map[string][]string
		record announced
	}{
		{
			name: "first Ready to every chat, its own and the configured ones",
			app:  teleApp("web", withChats("1", "2"), withStatus(v1alpha1.PhaseReady, 3, "")),
			opts: Options{NotifyChats: []string{"2", "9"}},
			steps: func(h *harness) {
				h.mustSync("web") // adopts
				h.mustSync("web") // announces
				h.mustSync("web") // nothing new
			},
			want: map[string][]string{
				"1": {"default/web Ready 3/3"},
				"2": {"default/web Ready 3/3"},
				"9": {"default/web Ready 3/3"},
			},
			record: announced{Phase: v1alpha1.PhaseReady, Replicas: 3, Generation: 1},
		},
		{
			name: "pending and progressing are not announced",
			app:  teleApp("web", withChats("1"), withStatus(v1alpha1.PhasePending, 0, "")),
			steps: func(h *harness) {
				h.mustSync("web")
				h.mustSync("web")
				h.setStatus("web", v1alpha1.PhaseProgressing, 1, "1/3 ready")
				h.mustSync("web")
			},
			want:   map[string][]string{},
			record: announced{Phase: v1alpha1.PhaseProgressing, Replicas: 3, Generation: 1},
		},
		{
			name: "degraded with its reason and the pod to blame",
			app:  teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
			steps: func(h *harness) {
				h.setStatus("web", v1alpha1.PhaseDegraded, 2, "ImagePullBackOff on web-7c9f4d-abcde: back-off pulling image")
				h.mustSync("web")
			},
			want:   map[string][]string{"1": {"default/web Degraded: ImagePullBackOff on web-7c9f4d-abcde: back-off pulling image (pod web-7c9f4d-abcde)"}},
			record: announced{Phase: v1alpha1.PhaseDegraded, Replicas: 3, Generation: 1},
		},
		{
			name: "a status of an older generation is not announced",
			app:  teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseProgressing, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
			steps: func(h *harness) {
				h.update("web", func(a *v1alpha1.TeleApp) { a.Generation++; a.Spec.Image = "nginx:1.28" })
				h.mustSync("web")
			},
			want:   map[string][]string{},
			record: announced{Phase: v1alpha1.PhaseProgressing, Replicas: 3, Generation: 1},
		},
		{
			name: "scaled, from old to new",
			app:  teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
			steps: func(h *harness) {
				h.scale("web", 5)
				h.mustSync("web")
				h.mustSync("web")
			},
			want:   map[string][]string{"1": {"default/web scaled 3→5 by "}},
			record: announced{Phase: v1alpha1.PhaseReady, Replicas: 5, Generation: 2},
		},
		{
			name: "scaled from a chat names the person",
			app:  teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
			steps: func(h *harness) {
				h.update("web", func(a *v1alpha1.TeleApp) {
					a.Spec.Replicas = ptr.To[int32](1)
					a.Generation++
					a.Annotations[apps.AnnotationLastChangedBy] = "telegram:123 (@alice)"
					a.ManagedFields = []metav1.ManagedFieldsEntry{{
						Manager: "teleop-apps", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
						FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{"f:teleop.io/last-changed-by":{}}},"f:spec":{"f:replicas":{}}}`)},
					}}
				})
				h.mustSync("web")
			},
			want:   map[string][]string{"1": {"default/web scaled 3→1 by telegram:123 (@alice)"}},
			record: announced{Phase: v1alpha1.PhaseReady, Replicas: 1, Generation: 2},
		},
		{
			name: "a restart with kubectl names its field manager, once",
			app:  teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
			steps: func(h *harness) {
				h.update("web", func(a *v1alpha1.TeleApp) {
					a.Spec.RestartedAt = "2026-12-03T18:00:00Z"
					a.Generation++
					a.ManagedFields = []metav1.ManagedFieldsEntry{{
						Manager: "kubectl-patch", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
						FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:restartedAt":{}}}`)},
					}}
				})
				h.mustSync("web")
				h.mustSync("web")
			},
			want:   map[string][]string{"1": {"default/web restarted by kubectl-patch"}},
			record: announced{Phase: v1alpha1.PhaseReady, Replicas: 3, Generation: 2, RestartedAt: "2026-12-03T18:00:00Z"},
		},
		{
			name: "back to Ready after a rollout that held is announced again",
			app:  teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
			steps: func(h *harness) {
				h.setStatus("web", v1alpha1.PhaseProgressing, 1, "")
				h.mustSync("web")
				h.setStatus("web", v1alpha1.PhaseReady, 3, "")
				h.mustSync("web")
			},
			want:   map[string][]string{"1": {"default/web Ready 3/3"}},
			record: announced{Phase: v1alpha1.PhaseReady, Replicas: 3, Generation: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts, tt.app)
			tt.steps(h)
			assert.Equal(t, tt.want, h.chats.told())
			assert.Equal(t, tt.record, h.record("web"))
		})
	}
}

func TestNothingTwiceAcrossRestarts(t *testing.T) {
	h := newHarness(t, Options{}, teleApp("web", withChats("1"), withStatus(v1alpha1.PhaseReady, 3, "")))
	h.mustSync("web")
	h.mustSync("web")
	h.start(Options{Clock: h.clock}) // a new leader, same cluster
	h.mustSync("web")
	h.setStatus("web", v1alpha1.PhaseReady, 3, "all pods ready") // a status change that is no transition
	h.mustSync("web")
	assert.Equal(t, map[string][]string{"1": {"default/web Ready 3/3"}}, h.chats.told())
}

func TestACacheBehindItsOwnRecordDoesNotAnnounceAgain(t *testing.T) {
	h := newHarness(t, Options{}, teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")))
	h.scale("web", 5)
	stale := h.get("web")
	h.mustSync("web")
	require.Equal(t, int32(5), h.record("web").Replicas)

	// A status update queued before the record was written: the cache still
	// has the copy without it.
	require.NoError(t, h.indexer.Update(stale))
	require.NoError(t, h.c.sync(context.Background(), cache.ObjectName{Namespace: ns, Name: "web"}))
	assert.Equal(t, map[string][]string{"1": {"default/web scaled 3→5 by "}}, h.chats.told())
}

func TestFlappingIsDamped(t *testing.T) {
	h := newHarness(t, Options{Settle: 3 * time.Second},
		teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")))

	h.setStatus("web", v1alpha1.PhaseDegraded, 2, "CrashLoopBackOff on web-7c9f4d-abcde")
	h.mustSync("web")
	h.clock.Step(2 * time.Second)
	h.mustSync("web")
	h.setStatus("web", v1alpha1.PhaseReady, 3, "")
	h.mustSync("web")
	h.clock.Step(5 * time.Second)
	h.mustSync("web")
	assert.Empty(t, h.chats.told(), "a flap shorter than the settle time is not announced")

	h.setStatus("web", v1alpha1.PhaseDegraded, 2, "CrashLoopBackOff on web-7c9f4d-abcde")
	h.mustSync("web")
	h.clock.Step(2 * time.Second)
	h.mustSync("web")
	assert.Empty(t, h.chats.told(), "not yet settled")
	h.clock.Step(time.Second)
	h.mustSync("web")
	assert.Equal(t, map[string][]string{"1": {"default/web Degraded: CrashLoopBackOff on web-7c9f4d-abcde (pod web-7c9f4d-abcde)"}}, h.chats.told())
}

func TestRecordWrittenOnlyAfterEveryChatHasIt(t *testing.T) {
	h := newHarness(t, Options{},
		teleApp("web", withChats("1", "2"), withAnnounced(v1alpha1.PhaseProgressing, 3), withStatus(v1alpha1.PhaseReady, 3, "")))
	h.chats.failChat("2", errors.New("telegram: 502 bad gateway"))

	require.Error(t, h.sync("web"))
	assert.Equal(t, v1alpha1.PhaseProgressing, h.record("web").Phase, "not recorded while chat 2 lacks it")
	require.Error(t, h.sync("web"))

	h.chats.failChat("2", nil)
	h.mustSync("web")
	assert.Equal(t, v1alpha1.PhaseReady, h.record("web").Phase)
	assert.Equal(t, map[string][]string{
		"1": {"default/web Ready 3/3"},
		"2": {"default/web Ready 3/3"},
	}, h.chats.told(), "chat 1 is not told again while chat 2 is retried")
}

func TestARetriedDeliveryDoesNotWaitToSettleAgain(t *testing.T) {
	h := newHarness(t, Options{Settle: 3 * time.Second},
		teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, "")))
	h.setStatus("web", v1alpha1.PhaseFailed, 0, "cannot create Deployment: forbidden")
	h.mustSync("web")
	h.clock.Step(3 * time.Second)
	h.chats.failChat("1", errors.New("telegram: 502 bad gateway"))
	require.Error(t, h.sync("web"))

	h.chats.failChat("1", nil)
	h.mustSync("web") // no time has passed
	assert.Equal(t, map[string][]string{"1": {"default/web Failed: cannot create Deployment: forbidden (pod )"}}, h.chats.told())
	assert.Equal(t, v1alpha1.PhaseFailed, h.record("web").Phase)
}

func TestUnreachableChatDoesNotBlockTheOthers(t *testing.T) {
	h := newHarness(t, Options{},
		teleApp("web", withChats("1", "2"), withAnnounced(v1alpha1.PhaseProgressing, 3), withStatus(v1alpha1.PhaseReady, 3, "")))
	h.chats.failChat("1", fmt.Errorf("telegram: 403 bot was blocked by the user: %w", ErrUnreachable))

	h.mustSync("web")
	assert.Equal(t, map[string][]string{"2": {"default/web Ready 3/3"}}, h.chats.told())
	assert.Equal(t, v1alpha1.PhaseReady, h.record("web").Phase)
	assert.Contains(t, <-h.recorder.Events, ReasonChatUnreachable)
}

func TestFinalizer(t *testing.T) {
	tests := []struct {
		name          string
		app           *v1alpha1.TeleApp
		opts          Options
		wantFinalizer bool
	}{
		{name: "with chats of its own", app: teleApp("web", withChats("1")), wantFinalizer: true},
		{name: "with configured chats only", app: teleApp("web"), opts: Options{NotifyChats: []string{"1"}}, wantFinalizer: true},
		{name: "with no chats at all", app: teleApp("web"), wantFinalizer: false},
		{name: "whose chats were all removed", app: teleApp("web", withAnnounced(v1alpha1.PhaseReady, 3)), wantFinalizer: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts, tt.app)
			h.mustSync("web")
			assert.Equal(t, tt.wantFinalizer, contains(h.get("web").Finalizers, Finalizer))
		})
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestDeletionAnnouncedThenReleased(t *testing.T) {
	app := teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), withStatus(v1alpha1.PhaseReady, 3, ""), deleting())
	app.Finalizers = append(app.Finalizers, "example.com/other")
	app.Annotations[apps.AnnotationLastChangedBy] = "telegram:123 (@alice)"
	app.Annotations[apps.AnnotationLastCommand] = "/delete web"
	h := newHarness(t, Options{}, app)
	h.chats.failChat("1", errors.New("telegram: timeout"))

	require.Error(t, h.syncDeletion("web"))
	assert.Contains(t, h.get("web").Finalizers, Finalizer, "held until the deletion was announced")

	h.chats.failChat("1", nil)
	require.NoError(t, h.syncDeletion("web"))
	assert.Equal(t, []string{"example.com/other"}, h.get("web").Finalizers)
	assert.Equal(t, map[string][]string{"1": {"default/web Deleted 3/3"}}, h.chats.told())
}

func TestRunAnnouncesWithWorkers(t *testing.T) {
	client := fake.NewSimpleClientset()
	chats := newChatLog()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	c, err := NewController(client, factory.Teleop().V1alpha1().TeleApps(), chats, record.NewFakeRecorder(1000), Options{NotifyChats: []string{"1", "2"}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go func() { assert.NoError(t, c.Run(ctx, 4)) }()

	const apps = 20
	want := map[string][]string{}
	for i := range apps {
		app := teleApp(fmt.Sprintf("app-%02d", i), withStatus(v1alpha1.PhaseReady, 3, ""))
		_, err := client.TeleopV1alpha1().TeleApps(ns).Create(ctx, app, metav1.CreateOptions{})
		require.NoError(t, err)
		for _, chat := range []string{"1", "2"} {
			want[chat] = append(want[chat], summary(notice(app, KindReady)))
		}
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := chats.told()
		for chat := range want {
			assert.ElementsMatch(c, want[chat], got[chat])
		}
	}, 10*time.Second, 10*time.Millisecond)
}

func TestNegativeDurationsAreRefused(t *testing.T) {
	for _, opts := range []Options{{Settle: -time.Second}, {DeletionNoticeTimeout: -time.Second}} {
		factory := externalversions.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
		_, err := NewController(fake.NewSimpleClientset(), factory.Teleop().V1alpha1().TeleApps(), newChatLog(), record.NewFakeRecorder(1), opts)
		assert.ErrorContains(t, err, "negative", "%+v", opts)
	}
}

func deletedAgo(d time.Duration) appOption {
	return func(a *v1alpha1.TeleApp) { a.DeletionTimestamp = ptr.To(metav1.NewTime(time.Now().Add(-d))) }
}

func TestDeletionNoticeIsBounded(t *testing.T) {
	const bound = time.Minute
	unreachable := errors.New("telegram: 502 bad gateway")
	tests := []struct {
		name string
		app  *v1alpha1.TeleApp
		// steps runs the deletion syncs.
		steps         func(h *harness)
		wantTold      map[string][]string
		wantAbandoned float64
	}{
		{
			name: "told in time: released, nothing abandoned",
			app:  teleApp("web", withChats("1", "2"), withAnnounced(v1alpha1.PhaseReady, 3), deleting()),
			steps: func(h *harness) {
				require.NoError(h.t, h.syncDeletion("web"))
			},
			wantTold: map[string][]string{"1": {"default/web Deleted 0/3"}, "2": {"default/web Deleted 0/3"}},
		},
		{
			name: "a chat failing until the bound: released past it, that chat recorded",
			app:  teleApp("web", withChats("1", "2"), withAnnounced(v1alpha1.PhaseReady, 3), deleting()),
			steps: func(h *harness) {
				h.chats.failChat("2", unreachable)
				require.Error(h.t, h.syncDeletion("web"))
				assert.Contains(h.t, h.get("web").Finalizers, Finalizer, "held within the bound")
				h.clock.Step(bound)
				require.NoError(h.t, h.syncDeletion("web"))
			},
			wantTold:      map[string][]string{"1": {"default/web Deleted 0/3"}},
			wantAbandoned: 1,
		},
		{
			name: "deleted longer ago than the bound (teleop was down): released untold at once",
			app:  teleApp("web", withChats("1", "2"), withAnnounced(v1alpha1.PhaseReady, 3), deletedAgo(2*bound)),
			steps: func(h *harness) {
				require.NoError(h.t, h.syncDeletion("web"))
			},
			wantTold:      map[string][]string{},
			wantAbandoned: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metrics := NewMetrics(prometheus.NewRegistry())
			h := newHarness(t, Options{DeletionNoticeTimeout: bound, Metrics: metrics}, tt.app)
			tt.steps(h)
			app, err := h.client.TeleopV1alpha1().TeleApps(ns).Get(context.Background(), "web", metav1.GetOptions{})
			require.NoError(t, err)
			assert.NotContains(t, app.Finalizers, Finalizer)
			assert.Equal(t, tt.wantTold, h.chats.told())
			assert.Equal(t, tt.wantAbandoned, testutil.ToFloat64(metrics.undeliveredDeletions))
			if tt.wantAbandoned > 0 {
				assert.Contains(t, drain(h.recorder), ReasonDeletionNoticeAbandoned)
			}
		})
	}
}

// drain returns the Events recorded so far.
func drain(r *record.FakeRecorder) string {
	var all []string
	for {
		select {
		case e := <-r.Events:
			all = append(all, e)
		default:
			return fmt.Sprint(all)
		}
	}
}

// hangingNotifier never delivers a notice of the given kinds: it waits until
// its caller gives up, as a send to an unresponsive Telegram does.
type hangingNotifier struct {
	*chatLog
	hang map[Kind]bool
}

func (n hangingNotifier) Notify(ctx context.Context, chat string, notice Notice) error {
	if n.hang[notice.Kind] {
		<-ctx.Done()
		return ctx.Err()
	}
	return n.chatLog.Notify(ctx, chat, notice)
}

func TestAHangingDeletionNoticeEndsAtTheBound(t *testing.T) {
	app := teleApp("web", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3), deleting())
	h := newHarness(t, Options{}, app)
	h.start(Options{Clock: h.clock, DeletionNoticeTimeout: 200 * time.Millisecond})
	h.c.notifier = hangingNotifier{chatLog: h.chats, hang: map[Kind]bool{KindDeleted: true}}

	require.NoError(t, h.syncDeletion("web"), "the wait ends at the bound, and so does the finalizer")
	assert.NotContains(t, h.get("web").Finalizers, Finalizer)
}

func TestDeletionsDoNotWaitBehindStuckNotices(t *testing.T) {
	client := fake.NewSimpleClientset(
		teleApp("stuck", withChats("1"), withAnnounced(v1alpha1.PhaseProgressing, 3), withStatus(v1alpha1.PhaseReady, 3, "")),
		teleApp("gone", withChats("1"), withAnnounced(v1alpha1.PhaseReady, 3)),
	)
	chats := newChatLog()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	notifier := hangingNotifier{chatLog: chats, hang: map[Kind]bool{KindReady: true}}
	c, err := NewController(client, factory.Teleop().V1alpha1().TeleApps(), notifier, record.NewFakeRecorder(100), Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go func() { assert.NoError(t, c.Run(ctx, 1)) }()

	// The only change worker now waits on stuck's Ready notice.
	require.Eventually(t, func() bool { return c.queue.Len() == 0 }, 5*time.Second, time.Millisecond)
	gone, err := client.TeleopV1alpha1().TeleApps(ns).Get(ctx, "gone", metav1.GetOptions{})
	require.NoError(t, err)
	gone.DeletionTimestamp = ptr.To(metav1.Now())
	_, err = client.TeleopV1alpha1().TeleApps(ns).Update(ctx, gone, metav1.UpdateOptions{})
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		app, err := client.TeleopV1alpha1().TeleApps(ns).Get(ctx, "gone", metav1.GetOptions{})
		return err == nil && !contains(app.Finalizers, Finalizer)
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[string][]string{"1": {"default/gone Deleted 0/3"}}, chats.told())
}
