// Package operator reconciles TeleApps into Deployments and Services, in the
// manner of k8s.io/sample-controller: informers, listers and a rate-limited
// workqueue of keys.
package operator

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
)

// Defaults fit for an operator watching a busy cluster (client-go's own are
// 5 QPS and a burst of 10).
const (
	DefaultWorkers = 8
	DefaultQPS     = 50
	DefaultBurst   = 100
	DefaultResync  = 10 * time.Minute
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
	// Logger is slog's default when nil.
	Logger *slog.Logger
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
}

// NewClients builds Clients from cfg with the QPS and Burst of opts, each
// client with its own rate limiter.
func NewClients(cfg *rest.Config, opts Options) (Clients, error) {
	opts = opts.withDefaults()
	limited := rest.CopyConfig(cfg)
	limited.QPS, limited.Burst = opts.QPS, opts.Burst
	kube, err := kubernetes.NewForConfig(rest.AddUserAgent(limited, "teleop-operator"))
	if err != nil {
		return Clients{}, fmt.Errorf("kubernetes client: %w", err)
	}
	tele, err := versioned.NewForConfig(rest.AddUserAgent(limited, "teleop-operator"))
	if err != nil {
		return Clients{}, fmt.Errorf("teleop client: %w", err)
	}
	events, err := kubernetes.NewForConfig(rest.AddUserAgent(limited, "teleop-events"))
	if err != nil {
		return Clients{}, fmt.Errorf("events client: %w", err)
	}
	return Clients{Kube: kube, Tele: tele, Events: events}, nil
}

// Operator is the controller with the informers it reads from.
type Operator struct {
	opts        Options
	clients     Clients
	teleFactory teleinformers.SharedInformerFactory
	kubeFactory kubeinformers.SharedInformerFactory
	podFactory  kubeinformers.SharedInformerFactory
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
	broadcaster := record.NewBroadcaster(record.WithContext(context.Background()))
	o := &Operator{
		opts:    opts,
		clients: clients,
		teleFactory: teleinformers.NewSharedInformerFactoryWithOptions(clients.Tele, opts.Resync,
			teleinformers.WithNamespace(opts.Namespace), teleinformers.WithTransform(stripManagedFields)),
		kubeFactory: kubeinformers.NewSharedInformerFactoryWithOptions(clients.Kube, opts.Resync,
			kubeinformers.WithNamespace(opts.Namespace), kubeinformers.WithTransform(stripManagedFields)),
		// Only teleop's pods: a cluster's other pods would cost memory for nothing.
		podFactory: kubeinformers.NewSharedInformerFactoryWithOptions(clients.Kube, opts.Resync,
			kubeinformers.WithNamespace(opts.Namespace), kubeinformers.WithTransform(stripManagedFields),
			kubeinformers.WithTweakListOptions(func(lo *metav1.ListOptions) {
				lo.LabelSelector = labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}).String()
			})),
		broadcaster: broadcaster,
		recorder:    broadcaster.NewRecorder(scheme, corev1.EventSource{Component: EventComponent}),
	}
	controller, err := NewController(clients.Kube, clients.Tele,
		o.teleFactory.Teleop().V1alpha1().TeleApps(),
		o.kubeFactory.Apps().V1().Deployments(),
		o.kubeFactory.Core().V1().Services(),
		o.podFactory.Core().V1().Pods(),
		o.recorder, opts.Logger)
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
	o.podFactory.Start(ctx.Done())
	defer o.podFactory.Shutdown()
	defer o.kubeFactory.Shutdown()
	defer o.teleFactory.Shutdown()
	return o.controller.Run(ctx, o.opts.Workers)
}

// stripManagedFields drops managedFields from cached objects: teleop never
// reads them and they are often the largest part of an object.
func stripManagedFields(obj any) (any, error) {
	if accessor, ok := obj.(metav1.ObjectMetaAccessor); ok {
		accessor.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}
