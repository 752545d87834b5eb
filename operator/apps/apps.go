// Package apps is the chat side's door to TeleApps: create, read, scale and
// delete, each write audited (who, which command, which request) in the same
// write as the change, and a request never applied twice. It knows nothing of
// Telegram: the caller fills in the Audit.
package apps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	listers "github.com/teleop/teleop/operator/generated/listers/api/v1alpha1"
)

// Annotations written with every change made through this package.
const (
	AnnotationLastChangedBy = "teleop.io/last-changed-by"
	AnnotationLastCommand   = "teleop.io/last-command"
	AnnotationLastRequestID = "teleop.io/last-request-id"
)

// Event reasons recorded on the TeleApp for every change made through this package.
const (
	ReasonCreatedFromChat    = "CreatedFromChat"
	ReasonScaledFromChat     = "ScaledFromChat"
	ReasonDeletedFromChat    = "DeletedFromChat"
	ReasonDeployedFromChat   = "DeployedFromChat"
	ReasonRestartedFromChat  = "RestartedFromChat"
	ReasonRolledBackFromChat = "RolledBackFromChat"
)

// maxCommandAnnotation bounds the command kept in the annotation, so a long
// message cannot bloat the object.
const maxCommandAnnotation = 256

// ErrOutOfRange reports a scale whose result would be outside 0..MaxReplicas;
// nothing was written.
var ErrOutOfRange = errors.New("replicas out of range")

// ErrAlreadyApplied reports that a request with this RequestID already changed
// the object, so it was not applied again.
var ErrAlreadyApplied = errors.New("this request was already applied")

// Audit says who changes a TeleApp, with which command, in which request.
type Audit struct {
	Actor     string // e.g. "telegram:12345 (@alice)"
	Command   string // e.g. "/scale web +2"
	RequestID string // e.g. "telegram-update-987"; a repeated RequestID is not applied twice
}

// ReplicaChange is a new replica count (Set) or a change of it (Delta).
type ReplicaChange struct {
	Set   *int32
	Delta int32
}

// Client creates, reads, scales and deletes TeleApps with audit.
type Client struct {
	client versioned.Interface
	events record.EventRecorder
	cache  Cache
}

// Cache is an informer's copy of TeleApps that reads use instead of a round
// trip to the API server (sample-controller style): a /list costs no List,
// a /scale one write instead of two reads and a write. A write read from it
// is still checked by its resourceVersion, and whatever else a cached copy
// would decide (a refusal, "already applied") is decided again on a fresh
// read, so a copy a few milliseconds old never changes an outcome; only a
// list may miss an app created that moment.
type Cache struct {
	Lister listers.TeleAppLister
	// Namespace is the one namespace the informer watches; "" for all.
	Namespace string
	// HasSynced reports whether the informer holds the whole namespace yet.
	HasSynced func() bool
}

// New returns a Client writing through client and recording Events with
// events (whose scheme must know the TeleApp type, see NewEventRecorder).
func New(client versioned.Interface, events record.EventRecorder) *Client {
	return &Client{client: client, events: events}
}

// NewCached is New reading through cache where it covers the namespace.
func NewCached(client versioned.Interface, events record.EventRecorder, cache Cache) *Client {
	return &Client{client: client, events: events, cache: cache}
}

// cached returns the cache's view of namespace, or false when the cache
// does not hold it (not synced yet, or another namespace).
func (c *Client) cached(namespace string) (listers.TeleAppNamespaceLister, bool) {
	if c.cache.Lister == nil || (c.cache.Namespace != "" && c.cache.Namespace != namespace) || !c.cache.HasSynced() {
		return nil, false
	}
	return c.cache.Lister.TeleApps(namespace), true
}

// Create creates TeleApp namespace/name running image with replicas, telling
// notifyChats about it. A Create repeated with the same RequestID returns the
// TeleApp the first one made.
func (c *Client) Create(ctx context.Context, namespace, name, image string, replicas int32, notifyChats []string, a Audit) (*v1alpha1.TeleApp, error) {
	if err := validateNew(name, image, replicas); err != nil {
		return nil, fmt.Errorf("create %s/%s: %w", namespace, name, err)
	}
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: a.annotations()},
		Spec:       v1alpha1.TeleAppSpec{Image: image, Replicas: ptr.To(replicas)},
	}
	if len(notifyChats) > 0 {
		app.Spec.Notify = &v1alpha1.Notify{Chats: slices.Compact(slices.Sorted(slices.Values(notifyChats)))}
	}
	created, err := c.client.TeleopV1alpha1().TeleApps(namespace).Create(ctx, app, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, getErr := c.Get(ctx, namespace, name)
		if getErr == nil && a.appliedTo(existing) {
			return existing, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create %s/%s: %w", namespace, name, err)
	}
	c.events.Eventf(created, corev1.EventTypeNormal, ReasonCreatedFromChat, "%s ran %q: created with image %s and %d replicas", a.Actor, a.Command, image, replicas)
	return created, nil
}

// Get returns TeleApp namespace/name, from the cache when it holds it.
func (c *Client) Get(ctx context.Context, namespace, name string) (*v1alpha1.TeleApp, error) {
	if app, ok := c.cachedApp(namespace, name); ok {
		return app, nil
	}
	return c.getLive(ctx, namespace, name)
}

// cachedApp is a copy of namespace/name from the cache, if it holds one.
// An app missing there may have been created a moment ago: callers read live.
func (c *Client) cachedApp(namespace, name string) (*v1alpha1.TeleApp, bool) {
	lister, ok := c.cached(namespace)
	if !ok {
		return nil, false
	}
	app, err := lister.Get(name)
	if err != nil {
		return nil, false
	}
	return app.DeepCopy(), true
}

// getLive reads namespace/name from the API server.
func (c *Client) getLive(ctx context.Context, namespace, name string) (*v1alpha1.TeleApp, error) {
	app, err := c.client.TeleopV1alpha1().TeleApps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", namespace, name, err)
	}
	return app, nil
}

// List returns the TeleApps of namespace sorted by name, from the cache
// when it holds the namespace.
func (c *Client) List(ctx context.Context, namespace string) ([]v1alpha1.TeleApp, error) {
	var items []v1alpha1.TeleApp
	if lister, ok := c.cached(namespace); ok {
		cached, err := lister.List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("list teleapps in %s: %w", namespace, err)
		}
		for _, app := range cached {
			items = append(items, *app.DeepCopy())
		}
	} else {
		list, err := c.client.TeleopV1alpha1().TeleApps(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list teleapps in %s: %w", namespace, err)
		}
		items = list.Items
	}
	slices.SortFunc(items, func(x, y v1alpha1.TeleApp) int { return strings.Compare(x.Name, y.Name) })
	return items, nil
}

// Scale sets or changes the replicas of namespace/name and returns the count
// before and after. A conflicting write is retried on a fresh read, so a Delta
// applies to the latest count; a result outside 0..MaxReplicas is refused
// before anything is written (ErrOutOfRange). A repeated RequestID returns ErrAlreadyApplied
// with the current count as both from and to.
func (c *Client) Scale(ctx context.Context, namespace, name string, ch ReplicaChange, a Audit) (from, to int32, err error) {
	before, scaled, err := c.update(ctx, namespace, name, a, func(app *v1alpha1.TeleApp) error {
		to64 := int64(app.Spec.DesiredReplicas()) + int64(ch.Delta)
		if ch.Set != nil {
			to64 = int64(*ch.Set)
		}
		if err := v1alpha1.ValidateReplicas(to64); err != nil {
			return fmt.Errorf("%w: %w", ErrOutOfRange, err)
		}
		app.Spec.Replicas = ptr.To(int32(to64))
		return nil
	})
	if before != nil {
		from, to = before.Spec.DesiredReplicas(), before.Spec.DesiredReplicas()
	}
	if err != nil {
		return from, to, fmt.Errorf("scale %s/%s: %w", namespace, name, err)
	}
	to = scaled.Spec.DesiredReplicas()
	c.events.Eventf(scaled, corev1.EventTypeNormal, ReasonScaledFromChat, "%s ran %q: replicas %d → %d", a.Actor, a.Command, from, to)
	return from, to, nil
}

// RetryBackoff spaces the retries of a chat change that met a conflict (and,
// in commands/approval, of an approved change that met a transient error).
// The operator's status writes bump the TeleApp's resourceVersion too, so
// during a rollout with kubectl writing as well, client-go's DefaultRetry
// (five tries 10 ms apart) runs out; this one waits a few seconds at most in all,
// far within an update's deadline.
var RetryBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: time.Second}

// update writes mutate's change of a fresh copy of namespace/name together
// with the audit annotations, retrying on conflict, and returns the object as
// it was read last (nil when it could not be read) and as written. A request
// already applied returns ErrAlreadyApplied; an error of mutate is returned
// as it is, with nothing written.
func (c *Client) update(ctx context.Context, namespace, name string, a Audit, mutate func(*v1alpha1.TeleApp) error) (before, after *v1alpha1.TeleApp, err error) {
	if cached, ok := c.cachedApp(namespace, name); ok {
		// Written only if still current; any other outcome is decided
		// again below, on a fresh read.
		if after, err = c.write(ctx, cached, a, mutate); err == nil {
			return cached, after, nil
		}
	}
	err = retry.RetryOnConflict(RetryBackoff, func() error {
		current, err := c.client.TeleopV1alpha1().TeleApps(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		before = current
		after, err = c.write(ctx, current, a, mutate)
		return err
	})
	return before, after, err
}

// write applies mutate and the audit to a copy of current and writes it,
// preconditioned on current's resourceVersion.
func (c *Client) write(ctx context.Context, current *v1alpha1.TeleApp, a Audit, mutate func(*v1alpha1.TeleApp) error) (*v1alpha1.TeleApp, error) {
	if a.appliedTo(current) {
		return nil, ErrAlreadyApplied
	}
	changed := current.DeepCopy()
	if err := mutate(changed); err != nil {
		return nil, err
	}
	a.annotate(changed)
	return c.client.TeleopV1alpha1().TeleApps(current.Namespace).Update(ctx, changed, metav1.UpdateOptions{})
}

// Delete deletes namespace/name. The audit annotations are written first, so
// whoever watches the deletion (the announcer, through its finalizer) sees who
// asked; the delete is then preconditioned on that very version. A repeated
// RequestID on an object already being deleted counts as success.
func (c *Client) Delete(ctx context.Context, namespace, name string, a Audit) error {
	var marked *v1alpha1.TeleApp
	err := retry.RetryOnConflict(RetryBackoff, func() error {
		current, err := c.client.TeleopV1alpha1().TeleApps(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if a.appliedTo(current) && current.DeletionTimestamp != nil {
			return ErrAlreadyApplied
		}
		changed := current.DeepCopy()
		a.annotate(changed)
		if marked, err = c.client.TeleopV1alpha1().TeleApps(namespace).Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
			return err
		}
		return c.client.TeleopV1alpha1().TeleApps(namespace).Delete(ctx, name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &marked.UID, ResourceVersion: &marked.ResourceVersion},
		})
	})
	if errors.Is(err, ErrAlreadyApplied) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", namespace, name, err)
	}
	c.events.Eventf(marked, corev1.EventTypeNormal, ReasonDeletedFromChat, "%s ran %q: deleted", a.Actor, a.Command)
	return nil
}

// validateNew refuses what the CRD schema would refuse, before a round trip.
func validateNew(name, image string, replicas int32) error {
	return errors.Join(v1alpha1.ValidateName(name), v1alpha1.ValidateImage(image), v1alpha1.ValidateReplicas(int64(replicas)))
}

// appliedTo reports whether app was last changed by this very request.
func (a Audit) appliedTo(app *v1alpha1.TeleApp) bool {
	return a.RequestID != "" && app.Annotations[AnnotationLastRequestID] == a.RequestID
}

func (a Audit) annotate(app *v1alpha1.TeleApp) {
	if app.Annotations == nil {
		app.Annotations = map[string]string{}
	}
	for k, v := range a.annotations() {
		app.Annotations[k] = v
	}
}

func (a Audit) annotations() map[string]string {
	command := a.Command
	if len(command) > maxCommandAnnotation {
		command = strings.ToValidUTF8(command[:maxCommandAnnotation], "") + "…"
	}
	return map[string]string{
		AnnotationLastChangedBy: a.Actor,
		AnnotationLastCommand:   command,
		AnnotationLastRequestID: a.RequestID,
	}
}
