package apps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// ErrNoRevision reports a rollback to a revision status.history does not
// hold (or, for the previous one, that there is none); nothing was written.
var ErrNoRevision = errors.New("no such revision")

// ErrUnchanged reports a change that would leave spec as it is (the image
// asked for is already the one); nothing was written.
var ErrUnchanged = errors.New("already so")

// ErrReplaced reports a rollback of an app that was deleted since, its name
// now another app's; nothing was written.
var ErrReplaced = errors.New("the app was deleted and another took its name")

// SetImage sets the image of namespace/name and returns the TeleApp before
// and after. An image that is already set returns ErrUnchanged; a repeated
// RequestID returns ErrAlreadyApplied. Both come with the TeleApp as it is.
func (c *Client) SetImage(ctx context.Context, namespace, name, image string, a Audit) (before, after *v1alpha1.TeleApp, err error) {
	if err := v1alpha1.ValidateImage(image); err != nil {
		return nil, nil, fmt.Errorf("set image of %s/%s: %w", namespace, name, err)
	}
	before, after, err = c.update(ctx, namespace, name, a, func(app *v1alpha1.TeleApp) error {
		if app.Spec.Image == image {
			return ErrUnchanged
		}
		app.Spec.Image = image
		return nil
	})
	if err != nil {
		return before, before, fmt.Errorf("set image of %s/%s: %w", namespace, name, err)
	}
	c.events.Eventf(after, corev1.EventTypeNormal, ReasonDeployedFromChat, "%s ran %q: image %s → %s", a.Actor, a.Command, before.Spec.Image, image)
	return before, after, nil
}

// Restart asks for a rolling restart of namespace/name by setting
// spec.restartedAt to at (RFC 3339, as kubectl rollout restart writes it).
// A repeated RequestID returns ErrAlreadyApplied.
func (c *Client) Restart(ctx context.Context, namespace, name string, at time.Time, a Audit) (*v1alpha1.TeleApp, error) {
	stamp := at.UTC().Format(time.RFC3339)
	before, after, err := c.update(ctx, namespace, name, a, func(app *v1alpha1.TeleApp) error {
		if app.Spec.RestartedAt == stamp {
			return ErrUnchanged
		}
		app.Spec.RestartedAt = stamp
		return nil
	})
	if err != nil {
		return before, fmt.Errorf("restart %s/%s: %w", namespace, name, err)
	}
	c.events.Eventf(after, corev1.EventTypeNormal, ReasonRestartedFromChat, "%s ran %q: rolling restart", a.Actor, a.Command)
	return after, nil
}

// RollbackTarget says which revision of status.history to go back to: the
// one numbered Revision, or, when Revision is zero, the newest whose image
// is not the current one (the previous image). With a UID, only the app of
// that UID is rolled back, not a later one of the same name.
type RollbackTarget struct {
	Revision int64
	UID      types.UID
}

// Rollback sets the image of namespace/name back to a revision of its
// history and returns the TeleApp before and after, and the revision gone
// back to. A revision that is not in the history returns ErrNoRevision, one
// whose image is the current one ErrUnchanged, an app that is not the
// target's UID ErrReplaced, a repeated RequestID ErrAlreadyApplied; nothing
// is written then.
func (c *Client) Rollback(ctx context.Context, namespace, name string, target RollbackTarget, a Audit) (before, after *v1alpha1.TeleApp, to v1alpha1.Revision, err error) {
	before, after, err = c.update(ctx, namespace, name, a, func(app *v1alpha1.TeleApp) error {
		if target.UID != "" && app.UID != target.UID {
			return ErrReplaced
		}
		rev, err := target.find(app)
		if err != nil {
			return err
		}
		to = rev
		if app.Spec.Image == rev.Image {
			return ErrUnchanged
		}
		app.Spec.Image = rev.Image
		return nil
	})
	if err != nil {
		return before, before, to, fmt.Errorf("roll back %s/%s: %w", namespace, name, err)
	}
	c.events.Eventf(after, corev1.EventTypeNormal, ReasonRolledBackFromChat, "%s ran %q: image %s → %s (revision %d)", a.Actor, a.Command, before.Spec.Image, to.Image, to.Revision)
	return before, after, to, nil
}

// find picks the target's revision from app's history.
func (t RollbackTarget) find(app *v1alpha1.TeleApp) (v1alpha1.Revision, error) {
	history := app.Status.History
	if t.Revision != 0 {
		i := slices.IndexFunc(history, func(r v1alpha1.Revision) bool { return r.Revision == t.Revision })
		if i < 0 {
			return v1alpha1.Revision{}, fmt.Errorf("%w: revision %d is not in the history", ErrNoRevision, t.Revision)
		}
		return history[i], nil
	}
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Image != app.Spec.Image {
			return history[i], nil
		}
	}
	return v1alpha1.Revision{}, fmt.Errorf("%w: the history has no image other than %s", ErrNoRevision, app.Spec.Image)
}
