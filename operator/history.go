package operator

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/actor"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// recordRevision appends the revision of app's image to status.history when
// the history does not end with that image yet. Who set the image is read
// from managedFields, which the cache strips: one live read per new image.
// When the live TeleApp's image has moved on, the cached one is behind and
// nothing is recorded: the sync of the newer version records it, with the
// right author.
func (c *Controller) recordRevision(ctx context.Context, app *v1alpha1.TeleApp, status *v1alpha1.TeleAppStatus) error {
	if latest := app.Status.LatestRevision(); latest != nil && latest.Image == app.Spec.Image {
		return nil
	}
	live, err := c.teleClient.TeleopV1alpha1().TeleApps(app.Namespace).Get(ctx, app.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read who set the image of TeleApp %s/%s: %w", app.Namespace, app.Name, err)
	}
	if live.Spec.Image != app.Spec.Image {
		return nil
	}
	status.History = appendRevision(status.History, app.Spec.Image, actor.Of(live.ObjectMeta, "spec", "image"), c.clock.Now())
	return nil
}

// appendRevision adds image as the next revision, set by change (now when
// the time of the change is unknown), and keeps the last MaxHistory.
func appendRevision(history []v1alpha1.Revision, image string, change actor.Change, now time.Time) []v1alpha1.Revision {
	next := int64(1)
	if n := len(history); n > 0 {
		next = history[n-1].Revision + 1
	}
	at := change.At
	if at.IsZero() {
		at = now
	}
	history = append(history, v1alpha1.Revision{Revision: next, Image: image, ChangedAt: &metav1.Time{Time: at.UTC()}, ChangedBy: change.By})
	return history[max(0, len(history)-v1alpha1.MaxHistory):]
}
