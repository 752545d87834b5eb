package operator

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// Condition reasons, besides the failure and pod-problem reasons that are
// used verbatim (ImagePullBackOff, Forbidden, ...).
const (
	conditionReasonPending           = "Pending"
	conditionReasonProgressing       = "Progressing"
	conditionReasonReady             = "Ready"
	conditionReasonNotReady          = "NotReady"
	conditionReasonComplete          = "Complete"
	conditionReasonAsExpected        = "AsExpected"
	conditionReasonDeadlineExceeded  = "ProgressDeadlineExceeded"
	deploymentReasonDeadlineExceeded = "ProgressDeadlineExceeded"
)

// failure is why a TeleApp's spec cannot be realised (phase Failed).
type failure struct {
	Reason  string // CamelCase, used as condition and Event reason
	Message string
}

// verdict is a phase with the reason and message that explain it.
type verdict struct {
	Phase   v1alpha1.Phase
	Reason  string
	Message string
}

// computeStatus derives the status of app from its Deployment (nil when none
// is observed yet), the app's pods and a failure to realise it (nil when
// none). It starts from the current status so unchanged conditions keep their
// transition times, and never mutates app.
func computeStatus(app *v1alpha1.TeleApp, d *appsv1.Deployment, pods []*podState, fail *failure) v1alpha1.TeleAppStatus {
	status := *app.Status.DeepCopy()
	status.ObservedGeneration = app.Generation
	status.Selector = podSelector(app)
	status.Replicas, status.ReadyReplicas, status.AvailableReplicas, status.UpdatedReplicas = 0, 0, 0, 0
	if d != nil {
		status.Replicas = d.Status.Replicas
		status.ReadyReplicas = d.Status.ReadyReplicas
		status.AvailableReplicas = d.Status.AvailableReplicas
		status.UpdatedReplicas = d.Status.UpdatedReplicas
	}
	v := judge(app, d, pods, fail)
	status.Phase, status.Message = v.Phase, v.Message
	setConditions(&status, app.Generation, v)
	return status
}

// judge applies the phase rules, most severe first.
func judge(app *v1alpha1.TeleApp, d *appsv1.Deployment, pods []*podState, fail *failure) verdict {
	if fail != nil {
		return verdict{Phase: v1alpha1.PhaseFailed, Reason: fail.Reason, Message: fail.Message}
	}
	if d == nil || d.Status.ObservedGeneration == 0 {
		return verdict{Phase: v1alpha1.PhasePending, Reason: conditionReasonPending, Message: "waiting for the Deployment to be observed"}
	}
	if reason, pod, others := podProblem(pods); reason != "" {
		msg := fmt.Sprintf("%s on %s", reason, pod)
		if others > 0 {
			msg += fmt.Sprintf(" (and %d more %s)", others, plural(others, "pod", "pods"))
		}
		return verdict{Phase: v1alpha1.PhaseDegraded, Reason: reason, Message: msg}
	}
	if c := deploymentCondition(d, appsv1.DeploymentProgressing); c != nil && c.Reason == deploymentReasonDeadlineExceeded {
		return verdict{Phase: v1alpha1.PhaseDegraded, Reason: conditionReasonDeadlineExceeded, Message: "progress deadline exceeded: " + c.Message}
	}
	want := app.Spec.DesiredReplicas()
	s := d.Status
	rolledOut := d.Status.ObservedGeneration >= d.Generation && d.Spec.Replicas != nil && *d.Spec.Replicas == want
	if rolledOut && s.Replicas == want && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.AvailableReplicas == want {
		return verdict{Phase: v1alpha1.PhaseReady, Reason: conditionReasonReady, Message: fmt.Sprintf("%d/%d replicas ready", s.ReadyReplicas, want)}
	}
	return verdict{Phase: v1alpha1.PhaseProgressing, Reason: conditionReasonProgressing,
		Message: fmt.Sprintf("%d/%d replicas ready, %d updated", s.ReadyReplicas, want, s.UpdatedReplicas)}
}

// podProblem returns the first (by pod name) container waiting reason that
// makes the app Degraded, the pod it was seen on, and how many other pods
// have such a problem.
func podProblem(pods []*podState) (reason, pod string, others int) {
	found := 0
	for _, p := range pods {
		problem := p.shownProblem()
		if problem == "" {
			continue
		}
		found++
		if pod == "" || p.name < pod {
			reason, pod = problem, p.name
		}
	}
	return reason, pod, max(found-1, 0)
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// setConditions maps the verdict onto the Ready, Progressing and Degraded
// conditions. Failed counts as Degraded: the app does not run as asked.
func setConditions(status *v1alpha1.TeleAppStatus, generation int64, v verdict) {
	set := func(t string, ok bool, reason string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: v.Message, ObservedGeneration: generation,
		})
	}
	switch v.Phase {
	case v1alpha1.PhaseReady:
		set(v1alpha1.ConditionReady, true, v.Reason)
		set(v1alpha1.ConditionProgressing, false, conditionReasonComplete)
		set(v1alpha1.ConditionDegraded, false, conditionReasonAsExpected)
	case v1alpha1.PhasePending, v1alpha1.PhaseProgressing:
		set(v1alpha1.ConditionReady, false, conditionReasonNotReady)
		set(v1alpha1.ConditionProgressing, true, v.Reason)
		set(v1alpha1.ConditionDegraded, false, conditionReasonAsExpected)
	default: // Degraded, Failed
		set(v1alpha1.ConditionReady, false, v.Reason)
		set(v1alpha1.ConditionProgressing, false, v.Reason)
		set(v1alpha1.ConditionDegraded, true, v.Reason)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
