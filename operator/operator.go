// Package operator reconciles TeleApps into Deployments and Services, in the
// manner of k8s.io/sample-controller: informers, listers and a rate-limited
// workqueue of keys.
package operator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kubeinformers "k8s.io/client-go/informers"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/teleop/teleop/operator/actor"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apigate"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/operator/teleclient"
)

// Defaults fit for an operator watching a busy cluster (client-go's own are
// 5 QPS and a burst of 10).
const (
	// DefaultWorkers: a worker mostly waits on one API write, so it takes
	// as many as the writes users make at once times how much longer a
	// Deployment write takes than theirs, with room to spare. 8 fell behind
	// 16 writers at 1,000 apps (docs/benchmarks.md, "Against Kopf").
	DefaultWorkers = 32
	// DefaultQPS and DefaultBurst, per client: one Deployment create per
	// TeleApp created, at the users' pace. 16 writers created 1,000 apps at
	// about 160 a second; at 100 QPS and a burst of 200 the Deployments came
	// 1.8 s after the last TeleApp. The API server's priority and fairness,
	// not this limiter, is what protects it from a burst.
	DefaultQPS    = 200
	DefaultBurst  = 400
	DefaultResync = 10 * time.Minute
	// DefaultBlockedRecheck: a blocked TeleApp costs two requests this often.
	DefaultBlockedRecheck = 30 * time.Second
	// DefaultProgressSettle: Pending and Progressing reach status once they
	// last this long; Ready, Degraded and Failed at once.
	DefaultProgressSettle = 2 * time.Second
	// progressWriteBurst in-progress statuses may be written at once, and
	// one more per ProgressSettle: a few apps rolling out slowly each get
	// theirs, a burst of a thousand goes mostly straight to Ready (at 5 a
	// second, 1,000 apps rolling out for 50 s cost 1.25 status writes each).
	progressWriteBurst = 10
	eventCacheSize     = 256
	// EventComponent is the source of the Events teleop records.
	EventComponent = "teleop"
)

// Options tune the operator. The zero value takes the defaults.
type Options struct {
	// Workers is how many TeleApps are reconciled at once.
	Workers int
	// QPS and Burst limit each API client (NewForConfig).
	QPS   float32
	Burst int
	// Resync is how often every TeleApp is reconciled even without a change.
	Resync time.Duration
	// Namespace limits the operator to one namespace; all when empty.
	Namespace string
	// BlockedRecheck is how often a TeleApp blocked by a Deployment or
	// Service it does not own looks again whether the way is clear.
	BlockedRecheck time.Duration
	// ProgressSettle is how long Pending or Progressing must last before it
	// is written to status; DefaultProgressSettle when zero.
	ProgressSettle time.Duration
	// Logger is slog's default when nil.
	Logger *slog.Logger
	// Metrics, when set, count and time the reconciles.
	Metrics *Metrics
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.QPS <= 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.BlockedRecheck <= 0 {
		o.BlockedRecheck = DefaultBlockedRecheck
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Clients are the API clients the operator uses. Events go through their own
// client so that recording them never eats into the reconcile budget.
type Clients struct {
	Kube   kubernetes.Interface
	Tele   versioned.Interface
	Events kubernetes.Interface // Kube when nil
	// APIServer, set by NewClients, holds the clients' requests while the
	// API server is unreachable; its Healthy says whether it is.
	APIServer *apigate.Gate
}

// NewClients builds Clients from cfg with the QPS and Burst of opts, each
// client with its own rate limiter, all behind one apigate.Gate. The
// clients of built-in kinds speak protobuf, which the API server encodes
// and teleop decodes several times cheaper than JSON (a watch of pods is
// most of what teleop reads); the TeleApp client speaks JSON, the only
// encoding of custom resources, and finds kinds with teleclient.MetaFactory.
func NewClients(cfg *rest.Config, opts Options) (Clients, error) {
	opts = opts.withDefaults()
	gate, err := apigate.New(cfg, apigate.Options{Logger: opts.Logger})
	if err != nil {
		return Clients{}, err
	}
	limited := rest.CopyConfig(cfg)
	limited.QPS, limited.Burst = opts.QPS, opts.Burst
	limited.Wrap(gate.Wrap)
	builtIn := rest.CopyConfig(limited)
	builtIn.ContentType = runtime.ContentTypeProtobuf
	builtIn.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	kube, err := kubernetes.NewForConfig(rest.AddUserAgent(builtIn, "teleop-operator"))
	if err != nil {
		return Clients{}, fmt.Errorf("kubernetes client: %w", err)
	}
	tele, err := teleclient.NewClientset(rest.AddUserAgent(limited, "teleop-operator"))
	if err != nil {
		return Clients{}, fmt.Errorf("teleop client: %w", err)
	}
	events, err := kubernetes.NewForConfig(rest.AddUserAgent(builtIn, "teleop-events"))
	if err != nil {
		return Clients{}, fmt.Errorf("events client: %w", err)
	}
	return Clients{Kube: kube, Tele: tele, Events: events, APIServer: gate}, nil
}

// Operator is the controller with the informers it reads from.
type Operator struct {
	opts        Options
	clients     Clients
	teleFactory teleinformers.SharedInformerFactory
	kubeFactory kubeinformers.SharedInformerFactory
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	controller  *Controller
}

// New builds the informer factories, the event recorder and the controller.
// Nothing runs until Run.
func New(clients Clients, opts Options) (*Operator, error) {
	opts = opts.withDefaults()
	if clients.Events == nil {
		clients.Events = clients.Kube
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	broadcaster := record.NewBroadcaster(record.WithContext(context.Background()),
		// client-go keeps 4096 recent events per cache for aggregation; a
		// few hundred serve as well and keep megabytes out of the heap.
		record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: eventCacheSize}))
	o := &Operator{
		opts:        opts,
		clients:     clients,
		teleFactory: NewTeleAppInformers(clients.Tele, opts.Namespace, opts.Resync),
		kubeFactory: newOwnedInformers(clients.Kube, opts.Namespace, opts.Resync),
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme, corev1.EventSource{Component: EventComponent}),
	}
	controller, err := NewController(clients.Kube, clients.Tele,
		o.teleFactory.Teleop().V1alpha1().TeleApps(),
		o.kubeFactory.Apps().V1().Deployments(),
		o.kubeFactory.Core().V1().Services(),
		o.kubeFactory.Core().V1().Pods(),
		o.recorder, ControllerOptions{Logger: opts.Logger, BlockedRecheck: opts.BlockedRecheck, ProgressSettle: opts.ProgressSettle, Metrics: opts.Metrics})
	if err != nil {
		return nil, err
	}
	o.controller = controller
	return o, nil
}

// TeleAppInformers is the factory whose TeleApp informer the controller uses;
// other controllers (the announcer) share it before Run to keep one cache.
func (o *Operator) TeleAppInformers() teleinformers.SharedInformerFactory { return o.teleFactory }

// Recorder records Events on TeleApps as teleop.
func (o *Operator) Recorder() record.EventRecorder { return o.recorder }

// Run starts event recording, the informers and the controller, and blocks
// until ctx is done.
func (o *Operator) Run(ctx context.Context) error {
	o.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: o.clients.Events.CoreV1().Events("")})
	defer o.broadcaster.Shutdown()
	o.teleFactory.Start(ctx.Done())
	o.kubeFactory.Start(ctx.Done())
	defer o.kubeFactory.Shutdown()
	defer o.teleFactory.Shutdown()
	return o.controller.Run(ctx, o.opts.Workers)
}

// newOwnedInformers is the factory of the caches of what teleop creates.
// They hold only what teleop labels: a cluster's other Deployments,
// Services and pods would cost memory for nothing. Objects of an app's name
// that are not in these caches are found with a live read when a create
// reports that they exist. They have none of the namespace index
// client-go's informers come with: the controller reads them by key and
// finds an app's pods by an index of its own (podsByApp), and the
// namespace index would hold one more entry, and take one more lookup, for
// every object and change. The controller keeps Deployments and pods as
// states of its own (cachedDeployment, cachedPod).
func newOwnedInformers(client kubernetes.Interface, namespace string, resync time.Duration) kubeinformers.SharedInformerFactory {
	ownedOnly := func(lo *metav1.ListOptions) {
		lo.LabelSelector = labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}).String()
	}
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(client, resync,
		kubeinformers.WithNamespace(namespace), kubeinformers.WithTransform(stripManagedFields),
		kubeinformers.WithTweakListOptions(ownedOnly))
	noIndexes := cache.Indexers{}
	factory.InformerFor(&appsv1.Deployment{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return appsinformers.NewFilteredDeploymentInformer(c, namespace, resync, noIndexes, ownedOnly)
	})
	factory.InformerFor(&corev1.Service{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewFilteredServiceInformer(c, namespace, resync, noIndexes, ownedOnly)
	})
	factory.InformerFor(&corev1.Pod{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewFilteredPodInformer(c, namespace, resync, noIndexes, ownedOnly)
	})
	return factory
}

// actorFields are the spec fields whose last writer teleop tells: the
// image in status.history, the replicas and restarts in the announcements.
var actorFields = []string{"image", "replicas", "restartedAt"}

// NewTeleAppInformers is the factory of the TeleApp cache the operator
// and the announcer share (namespace "" is every namespace): its TeleApps
// keep of their managedFields only who set actorFields (slimTeleApp).
func NewTeleAppInformers(client versioned.Interface, namespace string, resync time.Duration) teleinformers.SharedInformerFactory {
	return teleinformers.NewSharedInformerFactoryWithOptions(client, resync,
		teleinformers.WithNamespace(namespace), teleinformers.WithTransform(slimTeleApp))
}

// slimTeleApp keeps of a TeleApp's managedFields only who set actorFields
// (actor.Slim): the history and the announcer tell who changed what from
// the cache, without a read of the API server per change.
func slimTeleApp(obj any) (any, error) {
	if app, ok := obj.(*v1alpha1.TeleApp); ok {
		app.ManagedFields = actor.Slim(app.ManagedFields, actorFields...)
	}
	return obj, nil
}

// stripManagedFields drops managedFields from cached objects: teleop never
// reads them of the kinds it owns and they are often the largest part of an
// object.
func stripManagedFields(obj any) (any, error) {
	if accessor, ok := obj.(metav1.ObjectMetaAccessor); ok {
		accessor.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}
