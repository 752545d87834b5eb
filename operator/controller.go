package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"golang.org/x/time/rate"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	informers "github.com/teleop/teleop/operator/generated/informers/externalversions/api/v1alpha1"
	listers "github.com/teleop/teleop/operator/generated/listers/api/v1alpha1"
	"github.com/teleop/teleop/operator/teleclient"
)

// Controller reconciles TeleApps into Deployments and Services and reports
// what it observes in their status.
type Controller struct {
	kubeClient kubernetes.Interface
	teleClient versioned.Interface

	teleApps    listers.TeleAppLister
	deployments cache.Indexer // of deploymentStates
	services    corelisters.ServiceLister
	pods        cache.Indexer // of podStates, indexed by app (podsByApp)
	synced      []cache.InformerSynced

	queue          workqueue.TypedRateLimitingInterface[cache.ObjectName]
	recorder       record.EventRecorder
	log            *slog.Logger
	blockedRecheck time.Duration
	progressSettle time.Duration
	backlog        int           // queued keys beyond which in-progress statuses wait
	progressWrites *rate.Limiter // the budget of in-progress status writes
	clock          clock.WithTicker
	metrics        *Metrics

	progressMu       sync.Mutex
	progressingSince map[cache.ObjectName]time.Time // apps seen Pending or Progressing, since when
	progressWaiting  map[cache.ObjectName]struct{}  // apps whose in-progress status waits for its turn
}

// ControllerOptions tune a Controller; the zero value takes the defaults.
type ControllerOptions struct {
	// Logger is slog's default when nil.
	Logger *slog.Logger
	// BlockedRecheck is how often a TeleApp blocked by an object it does not
	// own checks again (the object may be outside the informer caches, so
	// its removal is not an event); DefaultBlockedRecheck when zero.
	BlockedRecheck time.Duration
	// ProgressSettle is how long Pending or Progressing must last before it
	// is written to status; DefaultProgressSettle when zero.
	ProgressSettle time.Duration
	// Clock is the real clock when nil; the queue's delays follow it too.
	Clock clock.WithTicker
	// Metrics, when set, count and time the reconciles.
	Metrics *Metrics
}

// NewController wires the controller to its informers. The Deployment,
// Service and pod informers may hold only what teleop labels
// (managed-by=teleop): an object of an app's name missing from them is
// looked up live when creating it reports a conflict.
func NewController(
	kubeClient kubernetes.Interface,
	teleClient versioned.Interface,
	teleAppInformer informers.TeleAppInformer,
	deploymentInformer appsinformers.DeploymentInformer,
	serviceInformer coreinformers.ServiceInformer,
	podInformer coreinformers.PodInformer,
	recorder record.EventRecorder,
	opts ControllerOptions,
) (*Controller, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BlockedRecheck <= 0 {
		opts.BlockedRecheck = DefaultBlockedRecheck
	}
	if opts.ProgressSettle <= 0 {
		opts.ProgressSettle = DefaultProgressSettle
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	c := &Controller{
		kubeClient:  kubeClient,
		teleClient:  teleClient,
		teleApps:    teleAppInformer.Lister(),
		deployments: deploymentInformer.Informer().GetIndexer(),
		services:    serviceInformer.Lister(),
		pods:        podInformer.Informer().GetIndexer(),
		synced: []cache.InformerSynced{
			teleAppInformer.Informer().HasSynced,
			deploymentInformer.Informer().HasSynced,
			serviceInformer.Informer().HasSynced,
			podInformer.Informer().HasSynced,
		},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "teleapps", Clock: opts.Clock},
		),
		recorder:         recorder,
		log:              opts.Logger,
		blockedRecheck:   opts.BlockedRecheck,
		progressSettle:   opts.ProgressSettle,
		backlog:          DefaultWorkers,
		progressWrites:   rate.NewLimiter(rate.Every(opts.ProgressSettle), progressWriteBurst),
		clock:            opts.Clock,
		metrics:          opts.Metrics,
		progressingSince: map[cache.ObjectName]time.Time{},
		progressWaiting:  map[cache.ObjectName]struct{}{},
	}
	// The Deployment and pod caches hold what the controller reads of them,
	// whatever transform the factory set.
	if err := deploymentInformer.Informer().SetTransform(cachedDeployment); err != nil {
		return nil, fmt.Errorf("deployment cache: %w", err)
	}
	if err := podInformer.Informer().SetTransform(cachedPod); err != nil {
		return nil, fmt.Errorf("pod cache: %w", err)
	}
	if err := podInformer.Informer().AddIndexers(cache.Indexers{podsByApp: podAppIndex}); err != nil {
		return nil, fmt.Errorf("index pods by app: %w", err)
	}
	handlers := []struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{teleAppInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: c.enqueue,
			UpdateFunc: func(old, obj any) {
				if syncMayChange(old, obj) {
					c.enqueue(obj)
				}
			},
			DeleteFunc: c.enqueue,
		}},
		{deploymentInformer.Informer(), c.ownedHandler()},
		{serviceInformer.Informer(), c.ownedHandler()},
		{podInformer.Informer(), c.podHandler()},
	}
	for _, h := range handlers {
		if _, err := h.informer.AddEventHandler(h.handler); err != nil {
			return nil, fmt.Errorf("add event handler: %w", err)
		}
	}
	return c, nil
}

// Run waits for the caches, starts workers and blocks until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("operator: caches did not sync: %w", ctx.Err())
	}
	c.backlog = workers
	c.log.Info("operator controller started", "workers", workers)
	for range workers {
		go wait.UntilWithContext(ctx, c.runWorker, time.Second)
	}
	<-ctx.Done()
	c.log.Info("operator controller stopping")
	return nil
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem syncs one key. Transient errors come back with the
// queue's exponential backoff; permanent failures are written to status by
// sync and return nil, so they are not retried until something changes.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	start := c.clock.Now()
	err := c.sync(ctx, key)
	c.metrics.observe(err, c.clock.Since(start))
	if err != nil {
		c.queue.AddRateLimited(key)
		switch {
		case ctx.Err() != nil: // shutting down
		case apierrors.IsConflict(err):
			// The cache is behind our own last write; the retry sees the new version.
			c.log.Debug("sync conflict, retrying", "teleapp", key.String(), "err", err)
		default:
			c.log.Warn("sync failed, retrying with backoff", "teleapp", key.String(), "retries", c.queue.NumRequeues(key), "err", err)
		}
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) enqueue(obj any) {
	name, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	c.queue.Add(name)
}

// syncMayChange says whether an update of a TeleApp can change what its
// sync does: a resync, a new spec (its generation), its deletion, or a
// status that someone changed. A write of its metadata alone, such as the
// announcer's finalizer and record, cannot.
func syncMayChange(old, obj any) bool {
	before, wasApp := old.(*v1alpha1.TeleApp)
	after, isApp := obj.(*v1alpha1.TeleApp)
	return !wasApp || !isApp ||
		before.ResourceVersion == after.ResourceVersion ||
		before.Generation != after.Generation ||
		!before.DeletionTimestamp.Equal(after.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(before.Status, after.Status)
}

// ownedHandler enqueues the TeleApp controlling a Deployment or Service, and
// also the TeleApp of the same name when the object has no controller: its
// removal is what lets a blocked TeleApp create its own.
func (c *Controller) ownedHandler() cache.ResourceEventHandler {
	handle := func(obj any) {
		object, ok := metaObject(obj)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(object); ref != nil {
			if ref.Kind == "TeleApp" && strings.HasPrefix(ref.APIVersion, v1alpha1.GroupName+"/") {
				c.queue.Add(cache.ObjectName{Namespace: object.GetNamespace(), Name: ref.Name})
			}
			return
		}
		c.enqueueIfApp(object.GetNamespace(), object.GetName())
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: handle,
		UpdateFunc: func(old, obj any) {
			if o, n := old.(metav1.Object), obj.(metav1.Object); o.GetResourceVersion() == n.GetResourceVersion() {
				return // periodic resync; the TeleApp's own resync covers it
			}
			handle(obj)
		},
		DeleteFunc: handle,
	}
}

func (c *Controller) enqueueIfApp(namespace, name string) {
	if _, err := c.teleApps.TeleApps(namespace).Get(name); err == nil {
		c.queue.Add(cache.ObjectName{Namespace: namespace, Name: name})
	}
}

// metaObject unwraps delete tombstones.
func metaObject(obj any) (metav1.Object, bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	object, ok := obj.(metav1.Object)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("unexpected object of type %T in event handler", obj))
	}
	return object, ok
}

// sync reconciles one TeleApp: its Deployment, its Service, then its status.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	app, err := c.teleApps.TeleApps(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		c.forgetProgress(key)
		return nil // deleted: garbage collection removes what it owned
	}
	if err != nil {
		return fmt.Errorf("get TeleApp %s: %w", key, err)
	}
	if app.DeletionTimestamp != nil {
		return nil
	}
	fail, deployment, err := c.syncDeployment(ctx, app)
	if err != nil {
		return err
	}
	if fail == nil {
		if fail, err = c.syncService(ctx, app); err != nil {
			return err
		}
	}
	pods, err := c.podsOf(key)
	if err != nil {
		return err
	}
	if fail != nil && fail.Reason == ReasonErrResourceExists {
		c.queue.AddAfter(key, c.blockedRecheck)
	}
	return c.updateStatus(ctx, key, app, deployment, pods, fail)
}

// syncDeployment creates or corrects the TeleApp's Deployment and returns it,
// or the failure that prevents it.
func (c *Controller) syncDeployment(ctx context.Context, app *v1alpha1.TeleApp) (*failure, *appsv1.Deployment, error) {
	deployments := c.kubeClient.AppsV1().Deployments(app.Namespace)
	current, err := c.cachedDeploymentOf(app.Namespace, app.Name)
	if apierrors.IsNotFound(err) {
		created, err := deployments.Create(ctx, newDeployment(app), metav1.CreateOptions{})
		switch {
		case err == nil:
			c.recorder.Eventf(app, corev1.EventTypeNormal, ReasonDeploymentCreated, "Created Deployment %s", app.Name)
			c.log.Info("created deployment", "teleapp", app.Namespace+"/"+app.Name, "replicas", app.Spec.DesiredReplicas(), "image", app.Spec.Image)
			return nil, created, nil
		case apierrors.IsAlreadyExists(err):
			// Not in the cache: someone else's, ours without our label, or
			// ours and the cache is behind. The live object decides.
			if current, err = deployments.Get(ctx, app.Name, metav1.GetOptions{}); err != nil {
				return nil, nil, fmt.Errorf("get Deployment %s/%s: %w", app.Namespace, app.Name, err)
			}
		default:
			fail, err := classify(fmt.Sprintf("create Deployment %s/%s", app.Namespace, app.Name), err)
			return fail, nil, err
		}
	} else if err != nil {
		return nil, nil, fmt.Errorf("get Deployment %s/%s from cache: %w", app.Namespace, app.Name, err)
	}
	if !metav1.IsControlledBy(current, app) {
		return notOwned("Deployment", app), nil, nil
	}
	desired := reconcileDeployment(app, current)
	if desired == nil {
		return nil, current, nil
	}
	patch, err := deploymentPatch(current, desired)
	if err != nil {
		return nil, current, fmt.Errorf("patch for Deployment %s/%s: %w", app.Namespace, app.Name, err)
	}
	updated, err := deployments.Patch(ctx, app.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if replacedSinceCached(err) {
		// Not a failure of the app: the retry decides on the new Deployment
		// once the cache has it.
		return nil, current, fmt.Errorf("update Deployment %s/%s: replaced since it was cached: %w", app.Namespace, app.Name, err)
	}
	if err != nil {
		fail, err := classify(fmt.Sprintf("update Deployment %s/%s", app.Namespace, app.Name), err)
		return fail, current, err
	}
	// A TeleApp whose spec teleop has already reported on did not change:
	// the Deployment did, by hand. Only that is worth an Event; a change of
	// the TeleApp shows in the Deployment's own scaling Events.
	drift := app.Status.ObservedGeneration == app.Generation
	if drift {
		c.recorder.Eventf(app, corev1.EventTypeNormal, ReasonDriftCorrected, "Reverted a change to Deployment %s: replicas %d, image %s", app.Name, app.Spec.DesiredReplicas(), app.Spec.Image)
	}
	c.log.Info("updated deployment", "teleapp", app.Namespace+"/"+app.Name, "replicas", app.Spec.DesiredReplicas(), "image", app.Spec.Image, "driftCorrected", drift)
	return nil, updated, nil
}

// replacedSinceCached reports whether a patch of deploymentPatch was
// refused for the UID it carries: the Deployment was deleted and created
// again since it was cached.
func replacedSinceCached(err error) bool {
	cause, ok := apierrors.StatusCause(err, metav1.CauseTypeFieldValueInvalid)
	return ok && cause.Field == "metadata.uid"
}

// syncService keeps the TeleApp's Service in line with spec.port: created or
// corrected when set, deleted when unset. A Service it does not control is
// never touched.
func (c *Controller) syncService(ctx context.Context, app *v1alpha1.TeleApp) (*failure, error) {
	services := c.kubeClient.CoreV1().Services(app.Namespace)
	action := func(verb string) string { return fmt.Sprintf("%s Service %s/%s", verb, app.Namespace, app.Name) }
	current, err := c.services.Services(app.Namespace).Get(app.Name)
	if apierrors.IsNotFound(err) {
		if app.Spec.Port == nil {
			return nil, nil // a Service outside the cache is not teleop's to delete
		}
		_, err := services.Create(ctx, newService(app), metav1.CreateOptions{})
		switch {
		case err == nil:
			c.recorder.Eventf(app, corev1.EventTypeNormal, ReasonServiceCreated, "Created Service %s on port %d", app.Name, *app.Spec.Port)
			c.log.Info("created service", "teleapp", app.Namespace+"/"+app.Name, "port", *app.Spec.Port)
			return nil, nil
		case apierrors.IsAlreadyExists(err): // as for Deployments: the live object decides
			if current, err = services.Get(ctx, app.Name, metav1.GetOptions{}); err != nil {
				return nil, fmt.Errorf("get Service %s/%s: %w", app.Namespace, app.Name, err)
			}
		default:
			return classify(action("create"), err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("get Service %s/%s from cache: %w", app.Namespace, app.Name, err)
	}
	switch {
	case !metav1.IsControlledBy(current, app):
		if app.Spec.Port == nil {
			return nil, nil
		}
		return notOwned("Service", app), nil
	case app.Spec.Port == nil:
		err := services.Delete(ctx, app.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &current.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return classify(action("delete"), err)
		}
		c.recorder.Eventf(app, corev1.EventTypeNormal, ReasonServiceDeleted, "Deleted Service %s: the TeleApp has no port", app.Name)
		c.log.Info("deleted service", "teleapp", app.Namespace+"/"+app.Name)
		return nil, nil
	}
	desired := reconcileService(app, current)
	if desired == nil {
		return nil, nil
	}
	if _, err := services.Update(ctx, desired, metav1.UpdateOptions{}); err != nil {
		return classify(action("update"), err)
	}
	c.recorder.Eventf(app, corev1.EventTypeNormal, ReasonServiceUpdated, "Updated Service %s to port %d", app.Name, *app.Spec.Port)
	c.log.Info("updated service", "teleapp", app.Namespace+"/"+app.Name, "port", *app.Spec.Port)
	return nil, nil
}

// updateStatus writes the computed status through the status subresource
// when it differs from what is stored, and records an Event when the phase
// turns Degraded or Failed (so each failure is reported once). The final
// phases (Ready, Degraded, Failed) are written at once; Pending and
// Progressing only when progressDue says so, so that a scale or create
// costs one status write unless its rollout takes long.
func (c *Controller) updateStatus(ctx context.Context, key cache.ObjectName, app *v1alpha1.TeleApp, d *appsv1.Deployment, pods []*podState, fail *failure) error {
	status := computeStatus(app, d, pods, fail)
	if !inProgress(status.Phase) {
		c.forgetProgress(key)
	}
	if !revisionDue(app) && equality.Semantic.DeepEqual(app.Status, status) {
		return nil
	}
	if inProgress(status.Phase) && !c.progressDue(key) {
		return nil
	}
	c.recordRevision(app, &status) // once the status is written: it reads managedFields
	updated := app.DeepCopy()
	updated.Status = status
	if err := teleclient.UpdateStatus(ctx, c.teleClient, updated, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of TeleApp %s/%s: %w", app.Namespace, app.Name, err)
	}
	if status.Phase == app.Status.Phase && status.Message == app.Status.Message {
		return nil
	}
	switch status.Phase {
	case v1alpha1.PhaseFailed:
		c.recorder.Event(app, corev1.EventTypeWarning, fail.Reason, status.Message)
		c.log.Warn("teleapp failed", "teleapp", key.String(), "reason", fail.Reason, "message", status.Message)
	case v1alpha1.PhaseDegraded:
		c.recorder.Event(app, corev1.EventTypeWarning, ReasonDegraded, status.Message)
		c.log.Warn("teleapp degraded", "teleapp", key.String(), "message", status.Message)
	}
	return nil
}

// progressDue says whether an in-progress status of the app is to be
// written now. It is once the app has been in progress for progressSettle
// (a quick rollout goes straight to Ready), while the queue holds no more
// keys than there are workers, and within the budget of in-progress writes
// (progressWrites). An in-progress status only tells that the work is under
// way: the Deployment writes of the apps waiting in the queue come first,
// and in a burst, whose rollouts take long because the cluster is busy,
// most apps go straight to Ready. An app whose turn has not come is looked
// at again when the budget will have served the apps waiting before it
// (the events of its rollout bring it back sooner), not polled.
func (c *Controller) progressDue(key cache.ObjectName) bool {
	c.progressMu.Lock()
	defer c.progressMu.Unlock()
	now := c.clock.Now()
	since, seen := c.progressingSince[key]
	if !seen {
		c.progressingSince[key] = now
		c.queue.AddAfter(key, c.progressSettle)
		return false
	}
	if now.Sub(since) < c.progressSettle {
		return false
	}
	if c.queue.Len() <= c.backlog && c.progressWrites.AllowN(now, 1) {
		delete(c.progressWaiting, key)
		return true
	}
	c.progressWaiting[key] = struct{}{}
	c.queue.AddAfter(key, c.progressSettle*time.Duration(1+len(c.progressWaiting)))
	return false
}

func inProgress(p v1alpha1.Phase) bool {
	return p == v1alpha1.PhasePending || p == v1alpha1.PhaseProgressing
}

func (c *Controller) forgetProgress(key cache.ObjectName) {
	c.progressMu.Lock()
	defer c.progressMu.Unlock()
	delete(c.progressingSince, key)
	delete(c.progressWaiting, key)
}

func notOwned(kind string, app *v1alpha1.TeleApp) *failure {
	return &failure{
		Reason:  ReasonErrResourceExists,
		Message: fmt.Sprintf("%s %s/%s already exists and is not managed by this TeleApp; teleop will not take it over (delete it or rename the TeleApp)", kind, app.Namespace, app.Name),
	}
}

// classify sorts an API error into a permanent failure, reported in status
// and not retried until something changes, and a transient error, retried
// with backoff.
func classify(action string, err error) (*failure, error) {
	var status apierrors.APIStatus
	msg := err.Error()
	if errors.As(err, &status) {
		msg = status.Status().Message
	}
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(msg, "exceeded quota"):
		return &failure{Reason: ReasonQuotaExceeded, Message: fmt.Sprintf("cannot %s: %s", action, msg)}, nil
	case apierrors.IsForbidden(err):
		return &failure{Reason: ReasonForbidden, Message: fmt.Sprintf("cannot %s: %s", action, msg)}, nil
	case apierrors.IsInvalid(err):
		return &failure{Reason: ReasonInvalid, Message: fmt.Sprintf("cannot %s: %s", action, msg)}, nil
	}
	return nil, fmt.Errorf("%s: %w", action, err)
}
