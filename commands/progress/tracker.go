package progress

import (
	"context"
	"fmt"
	"html"
	"log/slog"
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
	OperationCreate Operation = "create"
	OperationScale  Operation = "scale"
)

// Defaults of TrackerOptions.
const (
	DefaultEditInterval = 2 * time.Second
	DefaultGiveUpAfter  = 5 * time.Minute
)

// TrackerOptions tune a Tracker.
type TrackerOptions struct {
	// EditInterval is the least time between two edits of one message.
	EditInterval time.Duration
	// GiveUpAfter ends the tracking of a rollout that has not ended by then.
	GiveUpAfter time.Duration
	// Clock is the time source; the real clock when nil.
	Clock clock.Clock
}

// Tracker edits the bot's reply to a /create or /scale as the rollout moves,
// until it ends, fails or takes too long.
type Tracker struct {
	lister    listers.TeleAppLister
	messenger bot.Messenger
	opts      TrackerOptions

	mu       sync.Mutex
	watchers map[cache.ObjectName]map[chan struct{}]bool
}

// NewTracker returns a Tracker fed by the TeleApp informer; the informer
// must be started by the caller.
func NewTracker(teleApps informers.TeleAppInformer, messenger bot.Messenger, opts TrackerOptions) (*Tracker, error) {
	if opts.EditInterval <= 0 {
		opts.EditInterval = DefaultEditInterval
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = DefaultGiveUpAfter
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	t := &Tracker{
		lister:    teleApps.Lister(),
		messenger: messenger,
		opts:      opts,
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

// Track edits message messageID of chatID as the rollout of namespace/name
// after op (from → to replicas; from is ignored for a create) moves on. It
// blocks until the rollout ended, failed, the TeleApp was deleted, the
// tracker gave up, or ctx ended: call it in a goroutine, with a context that
// outlives the update being handled. Edits are at least EditInterval apart
// and only made when the text changes; the final text is always shown.
func (t *Tracker) Track(ctx context.Context, chatID int64, messageID int, namespace, name string, op Operation, from, to int32) {
	key := cache.ObjectName{Namespace: namespace, Name: name}
	changed, unsubscribe := t.subscribe(key)
	defer unsubscribe()
	r := &rollout{op: op, name: name, from: from, to: to, started: t.opts.Clock.Now(), now: t.opts.Clock.Now}
	giveUp := t.opts.Clock.NewTimer(t.opts.GiveUpAfter)
	defer giveUp.Stop()
	var shown string
	var lastEdit time.Time
	for {
		text, done := r.describe(t.lister.TeleApps(namespace).Get(name))
		if text != shown {
			if wait := t.opts.EditInterval - t.opts.Clock.Since(lastEdit); wait > 0 {
				// Too soon after the last edit: look again when it is time,
				// unless the rollout moves first.
				if !t.sleep(ctx, wait) {
					return
				}
				continue
			}
			if _, err := t.messenger.Send(ctx, bot.Reply{ChatID: chatID, EditMessageID: messageID, Text: text}); err != nil {
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

// rollout is one tracked /create or /scale.
type rollout struct {
	op       Operation
	name     string
	from, to int32
	started  time.Time
	now      func() time.Time
	// seen is set once the informer shows the change tracked (the created
	// TeleApp, the new replica count): before, its cache is behind the
	// command and its state says nothing about this rollout.
	seen   bool
	gaveUp bool
}

// describe words the rollout's state for the reply, and says whether the
// rollout is over (ready, failed, deleted, given up).
func (r *rollout) describe(app *v1alpha1.TeleApp, err error) (string, bool) {
	name := "<b>" + html.EscapeString(r.name) + "</b>"
	switch {
	case apierrors.IsNotFound(err) && r.seen:
		return fmt.Sprintf("🗑 %s was deleted.", name), true
	case apierrors.IsNotFound(err):
		return r.underWay(name, "", 0)
	case err != nil:
		return fmt.Sprintf("⚠️ cannot follow %s: %s", name, html.EscapeString(err.Error())), true
	}
	desired := ptr.Deref(app.Spec.Replicas, 1)
	if r.op == OperationCreate || desired == r.to {
		r.seen = true
	}
	if !r.seen {
		return r.underWay(name, app.Spec.Image, app.Status.ReadyReplicas)
	}
	r.to = desired // someone may have scaled again since
	if app.Status.ObservedGeneration == app.Generation {
		switch app.Status.Phase {
		case v1alpha1.PhaseReady:
			return fmt.Sprintf("✅ %s is ready: %d/%d in %s", name, app.Status.ReadyReplicas, desired, r.elapsed()), true
		case v1alpha1.PhaseDegraded, v1alpha1.PhaseFailed:
			return fmt.Sprintf("❌ %s did not come up: %s", name, problemOf(app)), true
		}
	}
	return r.underWay(name, app.Spec.Image, app.Status.ReadyReplicas)
}

// underWay words a rollout that has not ended, and ends it when the tracker
// gave up waiting.
func (r *rollout) underWay(name, image string, ready int32) (string, bool) {
	if r.gaveUp {
		return fmt.Sprintf("⏳ %s: %d/%d ready after %s; I stopped watching. /status %s shows more.",
			name, ready, r.to, r.elapsed(), html.EscapeString(r.name)), true
	}
	verb := fmt.Sprintf("Scaling %s %d → %d", name, r.from, r.to)
	if r.op == OperationCreate {
		verb = "Created " + name
		if image != "" {
			verb += " (" + html.EscapeString(image) + ")"
		}
	}
	return fmt.Sprintf("⏳ %s… %d/%d ready", verb, ready, r.to), false
}

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
