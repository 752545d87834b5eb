// Package announce detects the changes of TeleApps worth telling people about
// (ready, degraded, failed, scaled, deleted) and hands each one, once, to a
// Notifier for every chat that follows the TeleApp. It knows nothing of
// Telegram: a Notice is data, the wording lives with the chat side.
package announce

import (
	"context"
	"errors"
)

// Kind is what happened to a TeleApp.
type Kind string

// The kinds of notices. Pending and Progressing are not announced: they are
// the noise between two of these.
const (
	KindReady    Kind = "Ready"
	KindDegraded Kind = "Degraded"
	KindFailed   Kind = "Failed"
	KindScaled   Kind = "Scaled"
	// KindRestarted: spec.restartedAt changed, a rolling restart.
	KindRestarted Kind = "Restarted"
	KindDeleted   Kind = "Deleted"
)

// Notice is one announceable change of one TeleApp.
type Notice struct {
	Kind      Kind
	Namespace string
	Name      string
	// Image is the TeleApp's spec.image.
	Image string
	// FromReplicas and ToReplicas are the desired replicas before and after a
	// Scaled notice; for the other kinds both are the current desired count.
	FromReplicas int32
	ToReplicas   int32
	// Ready and Desired are the ready and desired pod counts when the notice was made.
	Ready   int32
	Desired int32
	// Reason is the machine-readable reason of the phase (the reason of the
	// Degraded or Ready condition, e.g. ImagePullBackOff, Forbidden).
	Reason string
	// Message is the TeleApp's status message: why it is in its phase.
	Message string
	// Pod names the pod to blame, when the status names one.
	Pod string
	// Actor is who made a Scaled, Restarted or Deleted change: "telegram:123 (@alice)"
	// for a change from a chat, the field manager (e.g. "kubectl-scale") for
	// one made with kubectl; empty when the cluster cannot tell.
	Actor string
	// Generation is the TeleApp's metadata.generation the notice is about.
	Generation int64
}

// Notifier delivers a notice to one chat. Notify returns only once the
// notice was delivered, or with an error: one that wraps ErrUnreachable when
// the chat will never take it (the bot was blocked, the chat is gone), any
// other error when it may work later.
type Notifier interface {
	Notify(ctx context.Context, chatID string, n Notice) error
}

// ErrUnreachable marks a chat that cannot be reached and will not become
// reachable by retrying. A notice that fails with it counts as delivered.
var ErrUnreachable = errors.New("chat unreachable")

// NotifierFunc adapts a function to a Notifier.
type NotifierFunc func(ctx context.Context, chatID string, n Notice) error

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, chatID string, n Notice) error {
	return f(ctx, chatID, n)
}
