package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/teleop/teleop/operator/actor"
	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	informers "github.com/teleop/teleop/operator/generated/informers/externalversions/api/v1alpha1"
	listers "github.com/teleop/teleop/operator/generated/listers/api/v1alpha1"
	"github.com/teleop/teleop/operator/teleclient"
)

// Event reasons recorded on TeleApps.
const (
	ReasonAnnounced       = "Announced"
	ReasonChatUnreachable = "ChatUnreachable"
	ReasonAnnounceFailed  = "AnnounceFailed"
	// ReasonDeletionNoticeAbandoned: the deletion notice did not reach every
	// chat within the bound, and the finalizer was removed all the same.
	ReasonDeletionNoticeAbandoned = "DeletionNoticeAbandoned"
)

// FieldManager names the announcer's writes in managedFields.
const FieldManager = "teleop-announce"

var metav1PatchOptions = metav1.PatchOptions{FieldManager: FieldManager}

// DefaultSettle is how long a phase must hold before it is announced, so
// that a flap (Ready → Degraded → Ready within seconds) is not announced.
const DefaultSettle = 3 * time.Second

// DefaultDeletionNoticeTimeout is how long, from its deletionTimestamp, a
// TeleApp waits for its deletion notice before it is let go untold.
const DefaultDeletionNoticeTimeout = 60 * time.Second

// changeNoticeTimeout bounds one attempt to deliver a change notice, so a
// chat that never answers frees its worker; the notice is retried later.
const changeNoticeTimeout = time.Minute

// Options tune a Controller.
type Options struct {
	// NotifyChats are told about every TeleApp, on top of its spec.notify.chats.
	NotifyChats []string
	// Settle is how long a phase must hold before it is announced; zero
	// announces at once. cmd uses DefaultSettle.
	Settle time.Duration
	// DeletionNoticeTimeout bounds, counted from a TeleApp's
	// deletionTimestamp (so a restart does not reset it), how long its
	// finalizer waits for the Deleted notice; past it the finalizer goes and
	// the notice is recorded as undelivered. DefaultDeletionNoticeTimeout
	// when zero.
	DeletionNoticeTimeout time.Duration
	// Metrics count the notices given up; none when nil.
	Metrics *Metrics
	// Clock is the time source; the real clock when nil.
	Clock clock.WithTicker
}

// Controller announces the changes of TeleApps to the chats that follow them.
// Deletions have a queue and workers of their own, so a TeleApp being
// deleted never waits behind notices of changes that a chat is slow to take.
type Controller struct {
	client versioned.Interface
	lister listers.TeleAppLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// deletions holds the TeleApps being deleted.
	deletions       workqueue.TypedRateLimitingInterface[cache.ObjectName]
	notifier        Notifier
	recorder        record.EventRecorder
	metrics         *Metrics
	chats           []string
	settle          time.Duration
	deletionTimeout time.Duration
	clock           clock.WithTicker

	mu sync.Mutex
	// settling holds, per TeleApp, a phase seen but not yet held for Settle.
	settling map[cache.ObjectName]candidate
	// delivered remembers which chat already has which notice of a delivery
	// that is not complete yet, so a retry does not tell anyone twice.
	delivered map[cache.ObjectName]map[string]bool
	// written holds records written but maybe not yet seen in the cache: a
	// sync of an older cached copy would announce them again.
	written map[cache.ObjectName]expectation
}

// expectation is a record written to a TeleApp, awaited in the cache.
type expectation struct {
	value string
	until time.Time
}

// expectationTimeout bounds the wait for the cache to show a record written,
// in case someone else rewrote the annotation before it did.
const expectationTimeout = 30 * time.Second

// candidate is a phase waiting to settle.
type candidate struct {
	phase v1alpha1.Phase
	since time.Time
}

// NewController returns a controller fed by the TeleApp informer. Call Run to start it.
func NewController(client versioned.Interface, teleApps informers.TeleAppInformer, notifier Notifier, recorder record.EventRecorder, opts Options) (*Controller, error) {
	switch {
	case opts.Settle < 0:
		return nil, fmt.Errorf("settle time %s is negative", opts.Settle)
	case opts.DeletionNoticeTimeout < 0:
		return nil, fmt.Errorf("deletion notice timeout %s is negative", opts.DeletionNoticeTimeout)
	case opts.DeletionNoticeTimeout == 0:
		opts.DeletionNoticeTimeout = DefaultDeletionNoticeTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	c := &Controller{
		client:          client,
		lister:          teleApps.Lister(),
		synced:          teleApps.Informer().HasSynced,
		queue:           newQueue("announce", opts.Clock),
		deletions:       newQueue("announce_deletions", opts.Clock),
		notifier:        notifier,
		recorder:        recorder,
		metrics:         opts.Metrics,
		chats:           opts.NotifyChats,
		settle:          opts.Settle,
		deletionTimeout: opts.DeletionNoticeTimeout,
		clock:           opts.Clock,
		settling:        map[cache.ObjectName]candidate{},
		delivered:       map[cache.ObjectName]map[string]bool{},
		written:         map[cache.ObjectName]expectation{},
	}
	_, err := teleApps.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueueGone,
	})
	if err != nil {
		return nil, fmt.Errorf("watch TeleApps: %w", err)
	}
	return c, nil
}

func newQueue(name string, clk clock.WithTicker) workqueue.TypedRateLimitingInterface[cache.ObjectName] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
		workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: name, Clock: clk},
	)
}

// enqueue puts a TeleApp being deleted on the deletions queue, any other on
// the queue of changes.
func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	if app, ok := obj.(*v1alpha1.TeleApp); ok && app.DeletionTimestamp != nil {
		c.deletions.Add(key)
		return
	}
	c.queue.Add(key)
}

// enqueueGone puts a TeleApp that is gone on both queues, so that whichever
// worker last held it forgets it.
func (c *Controller) enqueueGone(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(key)
	c.deletions.Add(key)
}

// Run waits for the informer's cache, then announces with the given number
// of workers, for changes and as many for deletions, until ctx ends. Each
// worker delivers one TeleApp at a time, to all its chats at once, so
// workers × chats notices can be pending in the sender, which lets it
// coalesce them.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	defer c.deletions.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("announce: TeleApp cache did not sync: %w", ctx.Err())
	}
	slog.Info("announcer started", "workers", workers, "notifyChats", len(c.chats), "settle", c.settle, "deletionNoticeTimeout", c.deletionTimeout)
	for range workers {
		go wait.UntilWithContext(ctx, func(ctx context.Context) { c.work(ctx, c.queue, c.sync) }, time.Second)
		go wait.UntilWithContext(ctx, func(ctx context.Context) { c.work(ctx, c.deletions, c.syncDeletion) }, time.Second)
	}
	<-ctx.Done()
	return nil
}

// work syncs the keys of queue one by one until it shuts down.
func (c *Controller) work(ctx context.Context, queue workqueue.TypedRateLimitingInterface[cache.ObjectName], sync func(context.Context, cache.ObjectName) error) {
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return
		}
		if err := sync(ctx, key); err != nil {
			utilruntime.HandleErrorWithContext(ctx, err, "announcing failed, will retry", "teleapp", key)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// sync compares the TeleApp with what was last announced about it and
// announces the difference.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	app, err := c.lister.TeleApps(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	chats := c.chatsOf(app)
	switch {
	case app.DeletionTimestamp != nil:
		c.deletions.Add(key)
		return nil
	case len(chats) == 0:
		// Nobody to tell: no finalizer should hold the TeleApp.
		c.forget(key)
		return c.removeFinalizer(ctx, app)
	case !slices.Contains(app.Finalizers, Finalizer):
		return c.adopt(ctx, app)
	}

	if c.cacheBehind(key, app) {
		return nil // the informer brings our own write, and the key, back
	}
	prev, ok, err := recorded(app)
	if err != nil {
		slog.Warn("unreadable announce record, starting afresh", "teleapp", key, "err", err)
	}
	if !ok {
		prev = baseline(app)
	}
	next, notices := c.plan(key, app, prev)
	if next == prev {
		return nil
	}
	deliverCtx, cancel := context.WithTimeout(ctx, changeNoticeTimeout)
	defer cancel()
	if err := c.deliver(deliverCtx, key, app, chats, notices); err != nil {
		return err
	}
	if err := c.record(ctx, app, next); err != nil {
		return err
	}
	c.expect(key, next)
	for _, n := range notices {
		slog.Info("announced", "teleapp", key, "kind", n.Kind, "chats", len(chats), "actor", n.Actor)
		c.recorder.Eventf(app, corev1.EventTypeNormal, ReasonAnnounced, "Announced %s to %d chats", n.Kind, len(chats))
	}
	return nil
}

// plan works out what to announce about app since prev, and the record to
// keep once it was announced. A phase is announced once it held for the
// settle time; until then the key is looked at again when it will have.
func (c *Controller) plan(key cache.ObjectName, app *v1alpha1.TeleApp, prev announced) (announced, []Notice) {
	next := prev
	var notices []Notice
	if desired := app.Spec.DesiredReplicas(); desired != prev.Replicas {
		notices = append(notices, scaledNotice(app, prev.Replicas, actorOf(app, "replicas")))
		next.Replicas = desired
		next.Generation = app.Generation
	}
	if app.Spec.RestartedAt != prev.RestartedAt {
		notices = append(notices, restartedNotice(app, actorOf(app, "restartedAt")))
		next.RestartedAt = app.Spec.RestartedAt
		next.Generation = app.Generation
	}
	if phase, ok := c.settledPhase(key, app, prev.Phase); ok {
		if phase != v1alpha1.PhaseProgressing {
			notices = append(notices, notice(app, Kind(phase)))
		}
		next.Phase = phase
		next.Generation = app.Generation
	}
	return next, notices
}

// actor tells who set the TeleApp's spec field last, from the managedFields
// the shared TeleApp cache keeps of who set it (operator's slimTeleApp): no
// read of the API server per scale or restart announced.
func actorOf(app *v1alpha1.TeleApp, field string) string {
	return actor.Of(app.ObjectMeta, "spec", field).By
}

// settledPhase returns the TeleApp's phase class when it differs from prev
// and has held for the settle time. A phase that reverts to prev before then
// is forgotten.
func (c *Controller) settledPhase(key cache.ObjectName, app *v1alpha1.TeleApp, prev v1alpha1.Phase) (v1alpha1.Phase, bool) {
	phase, current := currentClass(app)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !current {
		return "", false // the status update to come will bring the key back
	}
	if phase == prev {
		delete(c.settling, key)
		return "", false
	}
	now := c.clock.Now()
	cand, seen := c.settling[key]
	if !seen || cand.phase != phase {
		cand = candidate{phase: phase, since: now}
		c.settling[key] = cand
	}
	if held := now.Sub(cand.since); held < c.settle {
		c.queue.AddAfter(key, c.settle-held)
		return "", false
	}
	// The candidate stays until the record shows the phase, so a delivery
	// retried does not wait for the phase to settle again.
	return phase, true
}

// syncDeletion announces the deletion of a TeleApp, then lets it go. The
// notice has until the deletionTimestamp plus the deletion notice timeout;
// past that the TeleApp goes untold, and an Event and a metric say so.
func (c *Controller) syncDeletion(ctx context.Context, key cache.ObjectName) error {
	app, err := c.lister.TeleApps(key.Namespace).Get(key.Name)
	switch {
	case apierrors.IsNotFound(err):
		c.forget(key)
		return nil
	case err != nil:
		return fmt.Errorf("get %s: %w", key, err)
	case app.DeletionTimestamp == nil:
		c.queue.Add(key) // a namesake created after the deletion
		return nil
	case !slices.Contains(app.Finalizers, Finalizer):
		c.forget(key)
		return nil
	}
	chats := c.chatsOf(app)
	deleted := notice(app, KindDeleted)
	deleted.Actor = deletedBy(app)
	if left := app.DeletionTimestamp.Add(c.deletionTimeout).Sub(c.clock.Now()); left > 0 {
		deliverCtx, cancel := context.WithTimeout(ctx, left)
		err := c.deliver(deliverCtx, key, app, chats, []Notice{deleted})
		cancel()
		switch {
		case err == nil, errors.Is(deliverCtx.Err(), context.DeadlineExceeded):
			// told every chat, or out of time: let the TeleApp go
		case ctx.Err() != nil:
			return fmt.Errorf("announce the deletion of %s: %w", key, ctx.Err())
		default:
			// The rate-limited retry may come later than the bound: be
			// back by then at the latest.
			c.deletions.AddAfter(key, left)
			return err
		}
	}
	if untold := c.untold(key, chats, deleted); len(untold) > 0 {
		c.abandon(app, untold)
	} else {
		slog.Info("announced", "teleapp", key, "kind", KindDeleted, "chats", len(chats), "actor", deleted.Actor)
	}
	// What was delivered is remembered until the cache shows the finalizer
	// gone (or the TeleApp): a sync on a cache that still has it would
	// otherwise tell the chats a second time.
	return c.removeFinalizer(ctx, app)
}

// untold lists the chats that do not have notice n.
func (c *Controller) untold(key cache.ObjectName, chats []string, n Notice) []string {
	var untold []string
	for _, chat := range chats {
		if !c.wasDelivered(key, deliveryID(chat, n)) {
			untold = append(untold, chat)
		}
	}
	return untold
}

// abandon records that the deletion of app was not announced to the chats
// untold within the bound.
func (c *Controller) abandon(app *v1alpha1.TeleApp, untold []string) {
	slog.Warn("deletion notice not delivered in time; letting the TeleApp go",
		"teleapp", app.Namespace+"/"+app.Name, "chats", len(untold), "timeout", c.deletionTimeout)
	c.recorder.Eventf(app, corev1.EventTypeWarning, ReasonDeletionNoticeAbandoned,
		"Deletion notice not delivered to %d chats within %s; removed finalizer %s", len(untold), c.deletionTimeout, Finalizer)
	c.metrics.deletionNoticesAbandoned(len(untold))
}

// deliver hands every notice to every chat, the chats in parallel and each
// chat's notices in order. A chat that already got a notice in an earlier,
// partly failed attempt does not get it again; an unreachable chat counts
// as delivered. It fails when any chat may still take a notice later.
func (c *Controller) deliver(ctx context.Context, key cache.ObjectName, app *v1alpha1.TeleApp, chats []string, notices []Notice) error {
	if len(notices) == 0 {
		return nil
	}
	errs := make([]error, len(chats))
	var wg sync.WaitGroup
	for i, chat := range chats {
		wg.Go(func() {
			for _, n := range notices {
				id := deliveryID(chat, n)
				if c.wasDelivered(key, id) {
					continue
				}
				err := c.notifier.Notify(ctx, chat, n)
				if errors.Is(err, ErrUnreachable) {
					slog.Warn("chat unreachable, notice dropped", "teleapp", key, "chat", chat, "kind", n.Kind, "err", err)
					c.recorder.Eventf(app, corev1.EventTypeWarning, ReasonChatUnreachable, "Chat %s cannot be reached: %v", chat, err)
				} else if err != nil {
					errs[i] = fmt.Errorf("notify chat %s of %s %s: %w", chat, key, n.Kind, err)
					return // the rest must follow this one, in order
				}
				c.markDelivered(key, id)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.recorder.Eventf(app, corev1.EventTypeWarning, ReasonAnnounceFailed, "Announcing failed, will retry: %v", err)
		return err
	}
	return nil
}

// deliveryID identifies a notice to a chat within one delivery.
func deliveryID(chat string, n Notice) string {
	return fmt.Sprintf("%s/%s/%d/%d/%d", chat, n.Kind, n.Generation, n.FromReplicas, n.ToReplicas)
}

func (c *Controller) wasDelivered(key cache.ObjectName, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered[key][id]
}

func (c *Controller) markDelivered(key cache.ObjectName, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.delivered[key] == nil {
		c.delivered[key] = map[string]bool{}
	}
	c.delivered[key][id] = true
}

// expect notes that the record a was written, and that what was delivered
// for it need not be remembered any more.
func (c *Controller) expect(key cache.ObjectName, a announced) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.delivered, key)
	c.written[key] = expectation{value: a.encode(), until: c.clock.Now().Add(expectationTimeout)}
}

// cacheBehind reports whether the cached app predates a record written.
func (c *Controller) cacheBehind(key cache.ObjectName, app *v1alpha1.TeleApp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	want, ok := c.written[key]
	if !ok {
		return false
	}
	if app.Annotations[AnnotationAnnounced] == want.value || c.clock.Now().After(want.until) {
		delete(c.written, key)
		return false
	}
	return true
}

// forget drops what is remembered about a TeleApp that is gone.
func (c *Controller) forget(key cache.ObjectName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.delivered, key)
	delete(c.settling, key)
	delete(c.written, key)
}

// chatsOf lists the chats told about app: its own and the configured ones, once each.
func (c *Controller) chatsOf(app *v1alpha1.TeleApp) []string {
	var chats []string
	if app.Spec.Notify != nil {
		chats = append(chats, app.Spec.Notify.Chats...)
	}
	chats = append(chats, c.chats...)
	slices.Sort(chats)
	return slices.Compact(chats)
}

// adopt puts the finalizer on a TeleApp that has chats to notify, with the
// baseline record when it has none yet, in one write.
func (c *Controller) adopt(ctx context.Context, app *v1alpha1.TeleApp) error {
	meta := map[string]any{
		"resourceVersion": app.ResourceVersion,
		"finalizers":      append(slices.Clone(app.Finalizers), Finalizer),
	}
	if _, ok := app.Annotations[AnnotationAnnounced]; !ok {
		meta["annotations"] = map[string]string{AnnotationAnnounced: baseline(app).encode()}
	}
	return c.patch(ctx, app, meta, "add finalizer to")
}

func (c *Controller) removeFinalizer(ctx context.Context, app *v1alpha1.TeleApp) error {
	if !slices.Contains(app.Finalizers, Finalizer) {
		return nil
	}
	kept := slices.DeleteFunc(slices.Clone(app.Finalizers), func(f string) bool { return f == Finalizer })
	return c.patch(ctx, app, map[string]any{"resourceVersion": app.ResourceVersion, "finalizers": kept}, "remove finalizer from")
}

// record keeps what was announced in the TeleApp's annotation. The value
// does not depend on the rest of the object, so no resourceVersion guard.
func (c *Controller) record(ctx context.Context, app *v1alpha1.TeleApp, a announced) error {
	return c.patch(ctx, app, map[string]any{"annotations": map[string]string{AnnotationAnnounced: a.encode()}}, "record announcement on")
}

// patch merge-patches the TeleApp's metadata. A resourceVersion in meta makes
// the write fail with a conflict when the TeleApp changed meanwhile; the
// informer then brings the newer version.
func (c *Controller) patch(ctx context.Context, app *v1alpha1.TeleApp, meta map[string]any, what string) error {
	// The UID makes a write meant for a TeleApp fail on a namesake created
	// after it was deleted.
	meta["uid"] = app.UID
	body, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", what, app.Namespace, app.Name, err)
	}
	err = teleclient.Patch(ctx, c.client, app.Namespace, app.Name, types.MergePatchType, body, metav1PatchOptions)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// A newer version is on its way through the informer and brings
		// the key back: nothing to report.
		slog.Debug("TeleApp changed meanwhile, will look again", "teleapp", app.Namespace+"/"+app.Name, "write", what)
		return nil
	case err != nil:
		return fmt.Errorf("%s %s/%s: %w", what, app.Namespace, app.Name, err)
	}
	return nil
}
