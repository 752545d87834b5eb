package progress

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	informers "github.com/teleop/teleop/operator/generated/informers/externalversions/api/v1alpha1"
	listers "github.com/teleop/teleop/operator/generated/listers/api/v1alpha1"
)

// Operation is what the tracked reply was about.
type Operation string

// The operations whose rollout is tracked.
const (
	OperationCreate   Operation = "create"
	OperationScale    Operation = "scale"
	OperationDeploy   Operation = "deploy"
	OperationRestart  Operation = "restart"
	OperationRollback Operation = "rollback"
)

// Rollout is a change made from the chat whose progress its reply follows.
type Rollout struct {
	Op              Operation
	Namespace, Name string
	// From and To are the desired replicas before and after a scale; To
	// is the desired count of the other operations (From is ignored).
	From, To int32
	// Image is the image rolled out by a deploy or rollback; Revision is
	// the revision of the history a rollback goes back to.
	Image    string
	Revision int64
	// Generation is the TeleApp's metadata.generation the change made; a
	// status of an older generation says nothing about it. Zero for create
	// and scale, which recognise their change by the replica count.
	Generation int64
	// Undo, when set, is offered on the reply if the rollout gets stuck.
	Undo *bot.Button
}

// Defaults of TrackerOptions.
const (
	DefaultEditInterval = 2 * time.Second
	DefaultGiveUpAfter  = 5 * time.Minute
	DefaultMaxTracked   = 256
)

// TrackerOptions tune a Tracker.
type TrackerOptions struct {
	// EditInterval is the least time between two edits of one message.
	EditInterval time.Duration
	// GiveUpAfter ends the tracking of a rollout that has not ended by then.
	GiveUpAfter time.Duration
	// MaxTracked bounds the rollouts tracked at once; a new one beyond it
	// ends the tracking of the oldest.
	MaxTracked int
	// Clock is the time source; the real clock when nil.
	Clock clock.Clock
}

// Tracker edits the bot's reply to a /create or /scale as the rollout moves,
// until it ends, fails or takes too long.
type Tracker struct {
	lister    listers.TeleAppLister
	messenger bot.Messenger
	opts      TrackerOptions

	// shutdown ends every tracking when Run's context ends.
	shutdown context.Context
	stop     context.CancelFunc

	mu       sync.Mutex
	watchers map[cache.ObjectName]map[chan struct{}]bool
	// live holds the cancel of each tracking, oldest first.
	live []*tracking
}

type tracking struct{ cancel context.CancelFunc }

// NewTracker returns a Tracker fed by the TeleApp informer; the informer
// must be started by the caller.
func NewTracker(teleApps informers.TeleAppInformer, messenger bot.Messenger, opts TrackerOptions) (*Tracker, error) {
	if opts.EditInterval <= 0 {
		opts.EditInterval = DefaultEditInterval
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = DefaultGiveUpAfter
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = DefaultMaxTracked
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	shutdown, stop := context.WithCancel(context.Background())
	t := &Tracker{
		lister:    teleApps.Lister(),
		messenger: messenger,
		opts:      opts,
		shutdown:  shutdown,
		stop:      stop,
		watchers:  map[cache.ObjectName]map[chan struct{}]bool{},
	}
	_, err := teleApps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    t.wake,
		UpdateFunc: func(_, obj any) { t.wake(obj) },
		DeleteFunc: t.wake,
	})
	if err != nil {
		return nil, fmt.Errorf("watch TeleApps: %w", err)
	}
	return t, nil
}

// Run returns when ctx ends, and ends every tracking then.
func (t *Tracker) Run(ctx context.Context) {
	<-ctx.Done()
	t.stop()
}

// admit registers a tracking under ctx, ending the oldest beyond
// MaxTracked, and returns its context and its release.
func (t *Tracker) admit(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stopOnShutdown := context.AfterFunc(t.shutdown, cancel)
	me := &tracking{cancel: cancel}
	t.mu.Lock()
	t.live = append(t.live, me)
	if len(t.live) > t.opts.MaxTracked {
		oldest := t.live[0]
		t.live = t.live[1:]
		oldest.cancel()
		slog.Info("tracking too many rollouts; stopped following the oldest", "max", t.opts.MaxTracked)
	}
	t.mu.Unlock()
	return ctx, func() {
		stopOnShutdown()
		cancel()
		t.mu.Lock()
		defer t.mu.Unlock()
		if i := slices.Index(t.live, me); i >= 0 {
			t.live = slices.Delete(t.live, i, i+1)
		}
	}
}

// wake tells the trackers of obj that it changed.
func (t *Tracker) wake(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for ch := range t.watchers[key] {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}

func (t *Tracker) subscribe(key cache.ObjectName) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watchers[key] == nil {
		t.watchers[key] = map[chan struct{}]bool{}
	}
	t.watchers[key][ch] = true
	return ch, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.watchers[key], ch)
		if len(t.watchers[key]) == 0 {
			delete(t.watchers, key)
		}
	}
}

// Track edits message messageID of chatID as the rollout ro moves on. It
// blocks until the rollout ended, failed, the TeleApp was deleted, the
// tracker gave up, MaxTracked newer trackings started, Run's context ended
// or ctx ended: call it in a goroutine, with a context that outlives the
// update being handled. Edits go out as progress (behind replies and
// notices), at least EditInterval apart and only when the text changes; the
// final text is always shown.
func (t *Tracker) Track(ctx context.Context, chatID int64, messageID int, ro Rollout) {
	ctx, release := t.admit(ctx)
	defer release()
	key := cache.ObjectName{Namespace: ro.Namespace, Name: ro.Name}
	changed, unsubscribe := t.subscribe(key)
	defer unsubscribe()
	r := &rollout{Rollout: ro, started: t.opts.Clock.Now(), now: t.opts.Clock.Now}
	giveUp := t.opts.Clock.NewTimer(t.opts.GiveUpAfter)
	defer giveUp.Stop()
	var shown string
	var lastEdit time.Time
	for {
		text, done := r.describe(t.lister.TeleApps(ro.Namespace).Get(ro.Name))
		if text != shown {
			if wait := t.opts.EditInterval - t.opts.Clock.Since(lastEdit); wait > 0 {
				// Too soon after the last edit: look again when it is time,
				// unless the rollout moves first.
				if !t.sleep(ctx, wait) {
					return
				}
				continue
			}
			reply := bot.Reply{ChatID: chatID, EditMessageID: messageID, Text: text, Priority: bot.PriorityProgress}
			if r.stuck && ro.Undo != nil {
				reply.Buttons = [][]bot.Button{{*ro.Undo}}
			}
			if _, err := t.messenger.Send(ctx, reply); err != nil {
				slog.Warn("progress edit failed, no longer tracking", "teleapp", key, "chat", chatID, "message", messageID, "err", err)
				return
			}
			shown, lastEdit = text, t.opts.Clock.Now()
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-giveUp.C():
			r.gaveUp = true
		}
	}
}

func (t *Tracker) sleep(ctx context.Context, d time.Duration) bool {
	timer := t.opts.Clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C():
		return true
	}
}

// rollout is one tracked change.
type rollout struct {
	Rollout
	started time.Time
	now     func() time.Time
	// seen is set once the informer shows the change tracked (the created
	// TeleApp, the new replica count, the generation written): before, its
	// cache is behind the command and its state says nothing about this
	// rollout.
	seen bool
	// stuck is set when the rollout ended without coming up.
	stuck  bool
	gaveUp bool
}

// describe words the rollout's state for the reply, and says whether the
// rollout is over (ready, failed, deleted, given up).
func (r *rollout) describe(app *v1alpha1.TeleApp, err error) (string, bool) {
	name := "<b>" + html.EscapeString(r.Name) + "</b>"
	switch {
	case apierrors.IsNotFound(err) && r.seen:
		return fmt.Sprintf("🗑 %s was deleted.", name), true
	case apierrors.IsNotFound(err):
		return r.underWay(name, nil)
	case err != nil:
		return fmt.Sprintf("⚠️ cannot follow %s: %s", name, html.EscapeString(err.Error())), true
	}
	desired := ptr.Deref(app.Spec.Replicas, 1)
	if r.Op == OperationCreate || (r.Generation == 0 && desired == r.To) || (r.Generation != 0 && app.Generation >= r.Generation) {
		r.seen = true
	}
	if !r.seen {
		return r.underWay(name, app)
	}
	r.To = desired // someone may have scaled again since
	if r.changesImage() && app.Spec.Image != r.Image {
		return fmt.Sprintf("ℹ️ The image of %s was changed again, to %s; I stopped following %s.",
			name, code(app.Spec.Image), code(r.Image)), true
	}
	if app.Status.ObservedGeneration == app.Generation {
		switch app.Status.Phase {
		case v1alpha1.PhaseReady:
			return r.ready(name, app), true
		case v1alpha1.PhaseDegraded, v1alpha1.PhaseFailed:
			r.stuck = true
			if r.changesImage() || r.Op == OperationRestart {
				return fmt.Sprintf("❌ %s is stuck: %s", name, problemOf(app)), true
			}
			return fmt.Sprintf("❌ %s did not come up: %s", name, problemOf(app)), true
		}
	}
	return r.underWay(name, app)
}

// changesImage tells the operations that roll out an image.
func (r *rollout) changesImage() bool {
	return r.Op == OperationDeploy || r.Op == OperationRollback
}

// ready words a rollout that ended well.
func (r *rollout) ready(name string, app *v1alpha1.TeleApp) string {
	counts := fmt.Sprintf("%d/%d in %s", app.Status.ReadyReplicas, r.To, r.elapsed())
	switch {
	case r.changesImage():
		return fmt.Sprintf("✅ %s is on %s: %s", name, code(r.Image), counts)
	case r.Op == OperationRestart:
		return fmt.Sprintf("✅ %s restarted: %s", name, counts)
	}
	return fmt.Sprintf("✅ %s is ready: %s", name, counts)
}

// underWay words a rollout that has not ended, and ends it when the tracker
// gave up waiting. app is nil while the TeleApp is not in the cache yet.
func (r *rollout) underWay(name string, app *v1alpha1.TeleApp) (string, bool) {
	var status v1alpha1.TeleAppStatus
	image := ""
	if app != nil {
		status, image = app.Status, app.Spec.Image
	}
	if r.gaveUp {
		return fmt.Sprintf("⏳ %s: %d/%d ready after %s; I stopped watching. /status %s shows more.",
			name, status.ReadyReplicas, r.To, r.elapsed(), html.EscapeString(r.Name)), true
	}
	switch r.Op {
	case OperationCreate:
		verb := "Created " + name
		if image != "" {
			verb += " (" + html.EscapeString(image) + ")"
		}
		return fmt.Sprintf("⏳ %s… %d/%d ready", verb, status.ReadyReplicas, r.To), false
	case OperationScale:
		return fmt.Sprintf("⏳ Scaling %s %d → %d… %d/%d ready", name, r.From, r.To, status.ReadyReplicas, r.To), false
	}
	verb := "Restarting " + name
	if r.changesImage() {
		verb = fmt.Sprintf("Rolling out %s to %s", code(r.Image), name)
	}
	if !r.seen || app.Status.ObservedGeneration != app.Generation {
		return fmt.Sprintf("⏳ %s…", verb), false
	}
	old := max(status.Replicas-status.UpdatedReplicas, 0)
	return fmt.Sprintf("⏳ %s… %d/%d updated, %d ready, %d old", verb, status.UpdatedReplicas, r.To, status.ReadyReplicas, old), false
}

func code(s string) string { return "<code>" + html.EscapeString(s) + "</code>" }

func (r *rollout) elapsed() string {
	return fmt.Sprintf("%d s", int(r.now().Sub(r.started).Round(time.Second).Seconds()))
}

// problemOf is the TeleApp's problem and what to do about it.
func problemOf(app *v1alpha1.TeleApp) string {
	reason := ""
	for _, c := range app.Status.Conditions {
		if c.Type == v1alpha1.ConditionDegraded {
			reason = c.Reason
		}
	}
	text := html.EscapeString(app.Status.Message)
	if hint := Remedy(reason, app.Status.Message, app.Spec.Image, app.Name); hint != "" {
		text += " — " + hint
	}
	return text
}
