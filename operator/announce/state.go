package announce

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// AnnotationAnnounced keeps, on each TeleApp, what was last announced about
// it, so that a restart or a new leader announces what was missed and
// nothing twice.
const AnnotationAnnounced = "teleop.io/announced"

// Finalizer holds a TeleApp that has chats to notify until its deletion
// was announced.
const Finalizer = "teleop.io/announce"

// announced is the value of AnnotationAnnounced, compact JSON.
type announced struct {
	// Phase is the settled phase last recorded: Ready, Degraded or Failed
	// (announced), or Progressing for any phase in between (recorded
	// silently, so that coming back to Ready is announced again).
	Phase v1alpha1.Phase `json:"phase"`
	// Replicas is the desired replica count last announced.
	Replicas int32 `json:"replicas"`
	// Generation is the metadata.generation the record is about.
	Generation int64 `json:"generation"`
	// RestartedAt is the spec.restartedAt last announced.
	RestartedAt string `json:"restartedAt,omitempty"`
}

func (a announced) encode() string {
	b, _ := json.Marshal(a) // a struct of strings and numbers always marshals
	return string(b)
}

// recorded returns what the TeleApp's annotation says was announced; ok is
// false when there is no annotation or it cannot be read.
func recorded(app *v1alpha1.TeleApp) (a announced, ok bool, err error) {
	raw, found := app.Annotations[AnnotationAnnounced]
	if !found {
		return announced{}, false, nil
	}
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return announced{}, false, fmt.Errorf("annotation %s=%q: %w", AnnotationAnnounced, raw, err)
	}
	return a, true, nil
}

// baseline is the record of a TeleApp seen for the first time: its current
// desired replicas (nothing to announce about them) and no announced phase,
// so that its first Ready, Degraded or Failed is announced.
func baseline(app *v1alpha1.TeleApp) announced {
	return announced{Phase: v1alpha1.PhaseProgressing, Replicas: app.Spec.DesiredReplicas(), Generation: app.Generation, RestartedAt: app.Spec.RestartedAt}
}

// settledClass folds the phases that are not announced into Progressing.
func settledClass(p v1alpha1.Phase) v1alpha1.Phase {
	switch p {
	case v1alpha1.PhaseReady, v1alpha1.PhaseDegraded, v1alpha1.PhaseFailed:
		return p
	default:
		return v1alpha1.PhaseProgressing
	}
}

// currentClass is the TeleApp's phase class, and whether its status is
// about the current spec (a status of an older generation is not announced).
func currentClass(app *v1alpha1.TeleApp) (v1alpha1.Phase, bool) {
	if app.Status.Phase == "" || app.Status.ObservedGeneration != app.Generation {
		return "", false
	}
	return settledClass(app.Status.Phase), true
}

// notice builds a notice of kind k about app as it is now.
func notice(app *v1alpha1.TeleApp, k Kind) Notice {
	desired := app.Spec.DesiredReplicas()
	return Notice{
		Kind:         k,
		Namespace:    app.Namespace,
		Name:         app.Name,
		Image:        app.Spec.Image,
		FromReplicas: desired,
		ToReplicas:   desired,
		Ready:        app.Status.ReadyReplicas,
		Desired:      desired,
		Reason:       reasonOf(app),
		Message:      app.Status.Message,
		Pod:          blamedPod(app),
		Generation:   app.Generation,
	}
}

// scaledNotice is the notice of a change of the desired replicas from
// from, made by actor.
func scaledNotice(app *v1alpha1.TeleApp, from int32, actor string) Notice {
	n := notice(app, KindScaled)
	n.FromReplicas, n.Actor = from, actor
	return n
}

// restartedNotice is the notice of a rolling restart asked for by actor.
func restartedNotice(app *v1alpha1.TeleApp, actor string) Notice {
	n := notice(app, KindRestarted)
	n.Actor = actor
	return n
}

// reasonOf is the reason of the condition that explains the phase.
func reasonOf(app *v1alpha1.TeleApp) string {
	condition := v1alpha1.ConditionReady
	if app.Status.Phase == v1alpha1.PhaseDegraded || app.Status.Phase == v1alpha1.PhaseFailed {
		condition = v1alpha1.ConditionDegraded
	}
	if c := meta.FindStatusCondition(app.Status.Conditions, condition); c != nil {
		return c.Reason
	}
	return ""
}

// blamedPod finds, in the status message, the name of one of the TeleApp's
// own pods (<name>-<pod-template-hash>-<suffix>), which the operator names
// when a pod is to blame.
func blamedPod(app *v1alpha1.TeleApp) string {
	pod := regexp.MustCompile(`\b` + regexp.QuoteMeta(app.Name) + `-[a-z0-9]{1,10}-[a-z0-9]{5}\b`)
	return pod.FindString(app.Status.Message)
}

// deletedBy names who deleted the TeleApp when the cluster can tell: a
// deletion leaves no trace in managedFields, but operator/apps writes its
// audit annotations just before deleting for a chat user.
func deletedBy(app *v1alpha1.TeleApp) string {
	if strings.HasPrefix(app.Annotations[apps.AnnotationLastCommand], "/delete") {
		return app.Annotations[apps.AnnotationLastChangedBy]
	}
	return ""
}
