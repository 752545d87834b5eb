// Package approvals keeps the requests of two-person approval on the
// TeleApp they are about: a namespace labelled teleop.io/approval=required
// makes destructive chat changes wait for a second person. The open request
// is an annotation of the TeleApp (so it survives a restart of teleop), and
// every decision is a write preconditioned on the resourceVersion it was made
// on, so of two approvers pressing at once exactly one wins. It knows nothing
// of Telegram: the chat side fills in who asked and where to answer.
package approvals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
)

// The namespace label that requires two people for destructive chat changes.
const (
	LabelRequired = "teleop.io/approval"
	RequiredValue = "required"
)

// What a request leaves on its TeleApp.
const (
	// AnnotationRequest holds the open request (JSON) while it is open.
	AnnotationRequest = "teleop.io/approval-request"
	// LabelRequestID finds the TeleApp of a request by its ID.
	LabelRequestID = "teleop.io/approval-request-id"
	// AnnotationLastApproval records the outcome of the latest request (JSON).
	AnnotationLastApproval = "teleop.io/last-approval"
)

// DefaultTimeout is how long a request waits for a second person.
const DefaultTimeout = 30 * time.Minute

// Event reasons recorded on the TeleApp.
const (
	ReasonRequested = "ApprovalRequested"
	ReasonApproved  = "ApprovalGranted"
	ReasonRejected  = "ApprovalRejected"
	ReasonExpired   = "ApprovalExpired"
	ReasonFailed    = "ApprovedChangeFailed"
)

// State is where a request is.
type State string

const (
	// Pending waits for a decision.
	Pending State = "pending"
	// Approved was approved; the change is being applied.
	Approved State = "approved"
)

// Outcome is how a request ended.
type Outcome string

const (
	OutcomeApplied  Outcome = "applied"
	OutcomeRejected Outcome = "rejected"
	OutcomeExpired  Outcome = "expired"
	OutcomeFailed   Outcome = "failed"
)

// Errors of the decisions.
var (
	// ErrBusy: the TeleApp already has another open request.
	ErrBusy = errors.New("another change of this app is waiting for approval")
	// ErrNotOpen: no request with this ID is open (decided, expired or never made).
	ErrNotOpen = errors.New("this request is no longer open")
	// ErrExpired: the request timed out before the decision; it is now closed.
	ErrExpired = errors.New("this request has expired")
)

// Request is a change waiting for a second person.
type Request struct {
	ID string `json:"id"`
	// Operation and Args say what to apply: "scale" {"replicas": "0"}, "delete".
	Operation string            `json:"operation"`
	Args      map[string]string `json:"args,omitempty"`
	// Requester is the Kubernetes user who asked; Actor, Command and
	// RequestID are their audit of the change.
	Requester string `json:"requester"`
	Actor     string `json:"actor"`
	Command   string `json:"command"`
	RequestID string `json:"requestID"`
	// Chat and Message are where the request was posted, to tell its outcome.
	Chat    string `json:"chat,omitempty"`
	Message int    `json:"message,omitempty"`

	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	State   State     `json:"state"`
	// Approver is who approved (an actor, like Actor), and when.
	Approver string    `json:"approver,omitempty"`
	Approved time.Time `json:"approvedAt,omitzero"`
}

// Open is an open request with the TeleApp it is about.
type Open struct {
	Namespace, Name string
	Request         Request
}

// outcomeRecord is the outcome kept in AnnotationLastApproval.
type outcomeRecord struct {
	ID        string    `json:"id"`
	Command   string    `json:"command"`
	Requester string    `json:"requestedBy"`
	Outcome   Outcome   `json:"outcome"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	At        time.Time `json:"at"`
	Detail    string    `json:"detail,omitempty"`
}

// Requests opens, decides and closes approval requests.
type Requests struct {
	tele   versioned.Interface
	kube   kubernetes.Interface
	events record.EventRecorder
	now    func() time.Time
}

// New returns Requests writing TeleApps through tele, reading namespaces
// through kube and recording Events with events (whose scheme knows
// TeleApps, see apps.NewEventRecorder). now is the clock; time.Now when nil.
func New(tele versioned.Interface, kube kubernetes.Interface, events record.EventRecorder, now func() time.Time) *Requests {
	if now == nil {
		now = time.Now
	}
	return &Requests{tele: tele, kube: kube, events: events, now: now}
}

// Required reports whether namespace requires two people.
func (r *Requests) Required(ctx context.Context, namespace string) (bool, error) {
	ns, err := r.kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("read namespace %s for its approval label: %w", namespace, err)
	}
	return ns.Labels[LabelRequired] == RequiredValue, nil
}

// NewID returns a fresh request ID: 16 hex digits, short enough for a
// button's callback data and a label value.
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Open puts req on TeleApp namespace/name. A request with the same RequestID
// already open there (a redelivered chat update) is returned with opened
// false; another open request gives ErrBusy with it.
func (r *Requests) Open(ctx context.Context, namespace, name string, req Request) (got Request, opened bool, err error) {
	req.State, req.Created = Pending, r.now()
	var replaced *Request
	app, err := r.update(ctx, namespace, name, func(app *v1alpha1.TeleApp) error {
		current, found := requestOf(app)
		switch {
		case found && current.RequestID == req.RequestID:
			got = current
			return errNoChange
		case found && current.State == Pending && r.now().Before(current.Expires), found && current.State == Approved:
			got = current
			return ErrBusy
		case found: // expired, not swept yet: it will never be applied
			replaced = &current
		}
		got = req
		return setRequest(app, &req)
	})
	if err != nil {
		return got, false, fmt.Errorf("open an approval request on %s/%s: %w", namespace, name, err)
	}
	if app == nil {
		return got, false, nil
	}
	if replaced != nil {
		r.events.Eventf(app, corev1.EventTypeNormal, ReasonExpired, "nobody approved %q asked by %s in time (request %s)", replaced.Command, replaced.Actor, replaced.ID)
	}
	r.events.Eventf(app, corev1.EventTypeNormal, ReasonRequested, "%s asked for approval of %q (request %s, open until %s)",
		req.Actor, req.Command, req.ID, req.Expires.UTC().Format(time.RFC3339))
	return got, true, nil
}

// Posted records where the request was posted.
func (r *Requests) Posted(ctx context.Context, namespace, name, id string, message int) error {
	_, err := r.update(ctx, namespace, name, func(app *v1alpha1.TeleApp) error {
		req, found := requestOf(app)
		if !found || req.ID != id {
			return ErrNotOpen
		}
		req.Message = message
		return setRequest(app, &req)
	})
	if err != nil {
		return fmt.Errorf("record the message of approval request %s: %w", id, err)
	}
	return nil
}

// Find returns the open request id and its TeleApp, in any namespace.
func (r *Requests) Find(ctx context.Context, id string) (Open, error) {
	list, err := r.tele.TeleopV1alpha1().TeleApps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: LabelRequestID + "=" + id})
	if err != nil {
		return Open{}, fmt.Errorf("find approval request %s: %w", id, err)
	}
	for i := range list.Items {
		if req, found := requestOf(&list.Items[i]); found && req.ID == id {
			return Open{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name, Request: req}, nil
		}
	}
	return Open{}, ErrNotOpen
}

// All returns every open request, for the sweeper.
func (r *Requests) All(ctx context.Context) ([]Open, error) {
	list, err := r.tele.TeleopV1alpha1().TeleApps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: LabelRequestID})
	if err != nil {
		return nil, fmt.Errorf("list open approval requests: %w", err)
	}
	var open []Open
	for i := range list.Items {
		if req, found := requestOf(&list.Items[i]); found {
			open = append(open, Open{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name, Request: req})
		}
	}
	return open, nil
}

// Approve marks request id on namespace/name approved by approver, in one
// write preconditioned on the version it read: of two approvals racing, the
// second finds it no longer pending (ErrNotOpen). An expired request is
// closed (ErrExpired). The caller then applies the change and calls Close.
func (r *Requests) Approve(ctx context.Context, namespace, name, id, approver string) (Request, error) {
	var approved Request
	app, err := r.update(ctx, namespace, name, func(app *v1alpha1.TeleApp) error {
		req, err := r.pending(app, id)
		if err != nil {
			return err
		}
		req.State, req.Approver, req.Approved = Approved, approver, r.now()
		approved = req
		return setRequest(app, &req)
	})
	if errors.Is(err, ErrExpired) {
		return Request{}, errors.Join(err, r.Expire(ctx, namespace, name, id))
	}
	if err != nil {
		return Request{}, fmt.Errorf("approve request %s on %s/%s: %w", id, namespace, name, err)
	}
	r.events.Eventf(app, corev1.EventTypeNormal, ReasonApproved, "%s approved %q asked by %s (request %s)", approver, approved.Command, approved.Actor, id)
	return approved, nil
}

// Reject closes pending request id, rejected by who.
func (r *Requests) Reject(ctx context.Context, namespace, name, id, who string) (Request, error) {
	return r.close(ctx, namespace, name, id, func(req Request) (outcomeRecord, bool) {
		return outcomeRecord{Outcome: OutcomeRejected, DecidedBy: who}, req.State == Pending
	})
}

// Expire closes request id if it is still pending past its expiry.
func (r *Requests) Expire(ctx context.Context, namespace, name, id string) error {
	_, err := r.close(ctx, namespace, name, id, func(req Request) (outcomeRecord, bool) {
		return outcomeRecord{Outcome: OutcomeExpired}, req.State == Pending && !r.now().Before(req.Expires)
	})
	return err
}

// Close closes approved request id once its change was applied (or failed,
// with the reason in detail). A TeleApp already gone (an approved delete) has
// nothing left to close.
func (r *Requests) Close(ctx context.Context, namespace, name, id string, outcome Outcome, detail string) error {
	_, err := r.close(ctx, namespace, name, id, func(req Request) (outcomeRecord, bool) {
		return outcomeRecord{Outcome: outcome, DecidedBy: req.Approver, Detail: detail}, req.State == Approved
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// close removes request id from namespace/name when decide allows it,
// recording the outcome it returns in AnnotationLastApproval and an Event.
func (r *Requests) close(ctx context.Context, namespace, name, id string, decide func(Request) (outcomeRecord, bool)) (Request, error) {
	var closed Request
	var outcome outcomeRecord
	app, err := r.update(ctx, namespace, name, func(app *v1alpha1.TeleApp) error {
		req, found := requestOf(app)
		if !found || req.ID != id {
			return ErrNotOpen
		}
		rec, ok := decide(req)
		if !ok {
			return ErrNotOpen
		}
		rec.ID, rec.Command, rec.Requester, rec.At = req.ID, req.Command, req.Actor, r.now()
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode the outcome: %w", err)
		}
		delete(app.Annotations, AnnotationRequest)
		delete(app.Labels, LabelRequestID)
		app.Annotations[AnnotationLastApproval] = string(b)
		closed, outcome = req, rec
		return nil
	})
	if err != nil {
		return Request{}, fmt.Errorf("close approval request %s on %s/%s: %w", id, namespace, name, err)
	}
	r.recordOutcome(app, closed, outcome)
	return closed, nil
}

func (r *Requests) recordOutcome(ref *v1alpha1.TeleApp, req Request, rec outcomeRecord) {
	switch rec.Outcome {
	case OutcomeRejected:
		r.events.Eventf(ref, corev1.EventTypeNormal, ReasonRejected, "%s rejected %q asked by %s (request %s)", rec.DecidedBy, req.Command, req.Actor, req.ID)
	case OutcomeExpired:
		r.events.Eventf(ref, corev1.EventTypeNormal, ReasonExpired, "nobody approved %q asked by %s in time (request %s)", req.Command, req.Actor, req.ID)
	case OutcomeFailed:
		r.events.Eventf(ref, corev1.EventTypeWarning, ReasonFailed, "%q approved by %s failed: %s (request %s)", req.Command, rec.DecidedBy, rec.Detail, req.ID)
	}
}

// pending returns request id of app if it is pending and not expired.
func (r *Requests) pending(app *v1alpha1.TeleApp, id string) (Request, error) {
	req, found := requestOf(app)
	switch {
	case !found || req.ID != id || req.State != Pending:
		return Request{}, ErrNotOpen
	case !r.now().Before(req.Expires):
		return Request{}, ErrExpired
	}
	return req, nil
}

// errNoChange ends an update that has nothing to write.
var errNoChange = errors.New("no change")

// update reads namespace/name, lets change edit a copy and writes it with
// the resourceVersion it read, again on a conflict with a fresh read. It
// returns what it wrote, nil when change found nothing to write.
func (r *Requests) update(ctx context.Context, namespace, name string, change func(*v1alpha1.TeleApp) error) (*v1alpha1.TeleApp, error) {
	client := r.tele.TeleopV1alpha1().TeleApps(namespace)
	var written *v1alpha1.TeleApp
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		app := current.DeepCopy()
		if app.Annotations == nil {
			app.Annotations = map[string]string{}
		}
		if app.Labels == nil {
			app.Labels = map[string]string{}
		}
		if err := change(app); err != nil {
			return err
		}
		written, err = client.Update(ctx, app, metav1.UpdateOptions{})
		return err
	})
	if errors.Is(err, errNoChange) {
		return nil, nil
	}
	return written, err
}

func requestOf(app *v1alpha1.TeleApp) (Request, bool) {
	raw, ok := app.Annotations[AnnotationRequest]
	if !ok {
		return Request{}, false
	}
	var req Request
	if err := json.Unmarshal([]byte(raw), &req); err != nil || req.ID == "" {
		return Request{}, false // garbled by hand: nothing to approve
	}
	return req, true
}

func setRequest(app *v1alpha1.TeleApp, req *Request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode the request: %w", err)
	}
	app.Annotations[AnnotationRequest] = string(b)
	app.Labels[LabelRequestID] = req.ID
	return nil
}
