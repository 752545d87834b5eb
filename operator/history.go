package operator

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/actor"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// recordRevision appends the revision of app's image to status.history when
// the history does not end with that image yet. Who set the image is read
// from the managedFields the cache keeps of it (slimTeleApp), which belong
// to the same version of the TeleApp as its image: no API read.
func (c *Controller) recordRevision(app *v1alpha1.TeleApp, status *v1alpha1.TeleAppStatus) {
	if !revisionDue(app) {
		return
	}
	status.History = appendRevision(status.History, app.Spec.Image, actor.Of(app.ObjectMeta, "spec", "image"), c.clock.Now())
}

// revisionDue says whether app's image is not the last in its history yet.
func revisionDue(app *v1alpha1.TeleApp) bool {
	latest := app.Status.LatestRevision()
	return latest == nil || latest.Image != app.Spec.Image
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
