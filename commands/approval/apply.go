package approval

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/duration"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/approvals"
	"github.com/teleop/teleop/operator/apps"
)

// apply applies an approved request as its requester's change, approved by
// the approver, and closes it; it returns the outcome for the chat (HTML)
// and whether the request is closed.
//
// A transient failure (a conflict, a timeout, an API server briefly
// unreachable or overloaded) is retried with apps.RetryBackoff; if it
// persists, the request stays approved and the sweeper applies it again
// later, until Timeout after the approval. A repeat never applies twice:
// the audit's RequestID is the request's, and operator/apps does not apply
// a RequestID that is already on the TeleApp. A permanent failure (the
// cluster refused the change) closes the request as failed, with the
// reason in the chat, the Event and teleop.io/last-approval.
func (g *Gate) apply(ctx context.Context, o approvals.Open) (outcome string, closed bool) {
	namespace, name, req := o.Namespace, o.Name, o.Request
	a := apps.Audit{Actor: req.Actor + ", approved by " + req.Approver, Command: req.Command, RequestID: "approval-" + req.ID}
	err := fmt.Errorf("unknown operation %q", req.Operation)
	if op, known := operations[req.Operation]; known {
		err = retryTransient(ctx, func() error { return op.apply(ctx, g.Apps, namespace, name, req.Args, a) })
	}
	approvedBy := "✅ Approved by " + bot.EscapeHTML(req.Approver)
	if err != nil && transient(err) && g.cfg.Now().Sub(req.Approved) < g.cfg.Timeout {
		g.log.Warn("approved change not applied yet", "namespace", namespace, "name", name, "request", req.ID, "err", err)
		return fmt.Sprintf("%s, but the cluster did not answer, so it is not applied yet; I will try again within %s.",
			approvedBy, duration.HumanDuration(resumeAfter+g.cfg.SweepInterval)), false
	}
	result, detail, note := approvals.OutcomeApplied, "", approvedBy+": done."
	if err != nil {
		g.log.Error("apply approved change", "namespace", namespace, "name", name, "request", req.ID, "err", err)
		result, detail = approvals.OutcomeFailed, failureDetail(err)
		note = approvedBy + ", but it failed: " + bot.EscapeHTML(detail) + ". Nothing changed."
	}
	err = retryTransient(ctx, func() error { return g.cfg.Requests.Close(ctx, namespace, name, req.ID, result, detail) })
	if err != nil && !errors.Is(err, approvals.ErrNotOpen) {
		// Still approved: the sweeper applies it again (a no-op) and closes it.
		g.log.Error("close approval request", "request", req.ID, "err", err)
		return note, false
	}
	return note, true
}

// retryTransient calls fn until it succeeds, fails for good, or the
// transient failures outlast apps.RetryBackoff or ctx; it returns fn's last
// error.
func retryTransient(ctx context.Context, fn func() error) error {
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, apps.RetryBackoff, func(context.Context) (bool, error) {
		last = fn()
		switch {
		case last == nil:
			return true, nil
		case transient(last):
			return false, nil
		}
		return false, last
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// transient reports whether err may pass if the same call is made again.
func transient(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsUnexpectedServerError(err) ||
		utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// failureDetail says why a change failed for good, in the cluster's words.
func failureDetail(err error) string {
	message := err.Error()
	var status apierrors.APIStatus
	refused := errors.As(err, &status) && status.Status().Message != ""
	if refused {
		message = status.Status().Message
	}
	switch {
	case transient(err):
		return "the cluster kept failing to take it: " + message
	case refused:
		return "the cluster refused it: " + message
	}
	return message
}
