package progress

import (
	"fmt"
	"html"
	"strings"
	"time"

	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
)

// Started words the reply to a deploy, rollback or restart just made, which
// Track then edits as the rollout moves; was is the image before. The
// one-shot commands and the conversations both reply with it.
func Started(ro Rollout, was string) string {
	name, ns := "<b>"+html.EscapeString(ro.Name)+"</b>", "<b>"+html.EscapeString(ro.Namespace)+"</b>"
	switch ro.Op {
	case OperationDeploy:
		return fmt.Sprintf("🚀 Deploying %s to %s in %s (was %s)…", code(ro.Image), name, ns, code(was))
	case OperationRollback:
		return fmt.Sprintf("↩️ Rolling %s in %s back to %s (revision %d; was %s)…", name, ns, code(ro.Image), ro.Revision, code(was))
	default:
		return fmt.Sprintf("🔄 Restarting %s in %s: its pods are replaced one by one…", name, ns)
	}
}

// FormatHistory lists the revisions of app's status.history, newest first,
// marking the one running.
func FormatHistory(app *v1alpha1.TeleApp) string {
	name, ns := "<b>"+html.EscapeString(app.Name)+"</b>", "<b>"+html.EscapeString(app.Namespace)+"</b>"
	history := app.Status.History
	if len(history) == 0 {
		return fmt.Sprintf("%s in %s has no history yet: teleop records each image as it rolls out.", name, ns)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "History of %s in %s, newest first:", name, ns)
	for i := len(history) - 1; i >= 0; i-- {
		rev := history[i]
		fmt.Fprintf(&b, "\n<b>%d</b> %s", rev.Revision, code(rev.Image))
		if rev.ChangedAt != nil {
			fmt.Fprintf(&b, " — %s", html.EscapeString(rev.ChangedAt.UTC().Format(time.DateTime+" MST")))
		}
		if rev.ChangedBy != "" {
			fmt.Fprintf(&b, " by %s", html.EscapeString(rev.ChangedBy))
		}
		if i == len(history)-1 && rev.Image == app.Spec.Image {
			b.WriteString(" ← running")
		}
	}
	plain := html.EscapeString(app.Name)
	fmt.Fprintf(&b, "\n/rollback %s goes back to the previous image; /rollback %s &lt;revision&gt; to any of these.", plain, plain)
	return b.String()
}
