package operator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

func TestComputeStatusPhase(t *testing.T) {
	app := teleApp("web", withGeneration(4))
	tests := []struct {
		name            string
		app             *v1alpha1.TeleApp
		deployment      *appsv1.Deployment
		pods            []*corev1.Pod
		fail            *failure
		wantPhase       v1alpha1.Phase
		wantMessage     string
		wantReady       metav1.ConditionStatus
		wantProgressing metav1.ConditionStatus
		wantDegraded    metav1.ConditionStatus
		wantReason      string // of the Degraded condition when true, else of Ready
	}{
		{
			name: "no Deployment observed yet", app: app,
			wantPhase: v1alpha1.PhasePending, wantMessage: "waiting for the Deployment to be observed",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionTrue, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonNotReady,
		},
		{
			name: "Deployment created, not yet seen by its controller", app: app, deployment: ownedDeployment(app),
			wantPhase: v1alpha1.PhasePending, wantMessage: "waiting for the Deployment to be observed",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionTrue, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonNotReady,
		},
		{
			name: "pods starting", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 1, 1)),
			wantPhase: v1alpha1.PhaseProgressing, wantMessage: "1/3 replicas ready, 3 updated",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionTrue, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonNotReady,
		},
		{
			name: "all ready", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 3, 3)),
			wantPhase: v1alpha1.PhaseReady, wantMessage: "3/3 replicas ready",
			wantReady: metav1.ConditionTrue, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonReady,
		},
		{
			name: "scaled to zero", app: teleApp("web", withReplicas(0)), deployment: ownedDeployment(teleApp("web", withReplicas(0)), rolledOut(0, 0, 0, 0)),
			wantPhase: v1alpha1.PhaseReady, wantMessage: "0/0 replicas ready",
			wantReady: metav1.ConditionTrue, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonReady,
		},
		{
			name: "old pods still running after a scale down", app: teleApp("web", withReplicas(2)),
			deployment: ownedDeployment(teleApp("web", withReplicas(2)), rolledOut(3, 3, 3, 3)),
			wantPhase:  v1alpha1.PhaseProgressing, wantMessage: "3/2 replicas ready, 3 updated",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionTrue, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonNotReady,
		},
		{
			name: "new Deployment generation not observed yet", app: app,
			deployment: ownedDeployment(app, rolledOut(3, 3, 3, 3), withDeploymentGeneration(2)),
			wantPhase:  v1alpha1.PhaseProgressing, wantMessage: "3/3 replicas ready, 3 updated",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionTrue, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonNotReady,
		},
		{
			name: "a pod in ImagePullBackOff", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 2, 2)),
			pods:      []*corev1.Pod{appPod(app, "web-7c9f4-zzzzz"), appPod(app, "web-7c9f4-abcde", waiting("ImagePullBackOff")), appPod(app, "web-7c9f4-bbbbb")},
			wantPhase: v1alpha1.PhaseDegraded, wantMessage: "ImagePullBackOff on web-7c9f4-abcde",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionTrue, wantReason: "ImagePullBackOff",
		},
		{
			name: "several pods crash looping, the first by name is named", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 0, 0)),
			pods:      []*corev1.Pod{appPod(app, "web-b", waiting("CrashLoopBackOff")), appPod(app, "web-a", waiting("CrashLoopBackOff")), appPod(app, "web-c", waiting("ErrImagePull"))},
			wantPhase: v1alpha1.PhaseDegraded, wantMessage: "CrashLoopBackOff on web-a (and 2 more pods)",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionTrue, wantReason: "CrashLoopBackOff",
		},
		{
			name: "a terminating pod's problem does not count", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 3, 3)),
			pods:      []*corev1.Pod{appPod(app, "web-old", waiting("ErrImagePull"), terminating())},
			wantPhase: v1alpha1.PhaseReady, wantMessage: "3/3 replicas ready",
			wantReady: metav1.ConditionTrue, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonReady,
		},
		{
			name: "a pod merely creating its container is not a problem", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 2, 2)),
			pods:      []*corev1.Pod{appPod(app, "web-a", waiting("ContainerCreating"))},
			wantPhase: v1alpha1.PhaseProgressing, wantMessage: "2/3 replicas ready, 3 updated",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionTrue, wantDegraded: metav1.ConditionFalse, wantReason: conditionReasonNotReady,
		},
		{
			name: "progress deadline exceeded", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 1, 1), withProgressDeadlineExceeded()),
			wantPhase: v1alpha1.PhaseDegraded, wantMessage: `progress deadline exceeded: ReplicaSet "web-123" has timed out progressing.`,
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionTrue, wantReason: conditionReasonDeadlineExceeded,
		},
		{
			name: "spec cannot be realised", app: app, fail: notOwned("Deployment", app),
			wantPhase:   v1alpha1.PhaseFailed,
			wantMessage: "Deployment default/web already exists and is not managed by this TeleApp; teleop will not take it over (delete it or rename the TeleApp)",
			wantReady:   metav1.ConditionFalse, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionTrue, wantReason: ReasonErrResourceExists,
		},
		{
			name: "a failure outweighs pod problems", app: app, deployment: ownedDeployment(app, rolledOut(3, 3, 0, 0)),
			pods:      []*corev1.Pod{appPod(app, "web-a", waiting("CrashLoopBackOff"))},
			fail:      &failure{Reason: ReasonQuotaExceeded, Message: "cannot update Deployment default/web: exceeded quota"},
			wantPhase: v1alpha1.PhaseFailed, wantMessage: "cannot update Deployment default/web: exceeded quota",
			wantReady: metav1.ConditionFalse, wantProgressing: metav1.ConditionFalse, wantDegraded: metav1.ConditionTrue, wantReason: ReasonQuotaExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.app.DeepCopy()
			status := computeStatus(tt.app, tt.deployment, cached(tt.pods...), tt.fail)

			assert.Equal(t, before, tt.app, "computeStatus must not mutate the app")
			assert.Equal(t, tt.wantPhase, status.Phase)
			assert.Equal(t, tt.wantMessage, status.Message)
			assert.Equal(t, tt.app.Generation, status.ObservedGeneration)
			assert.Equal(t, "app.kubernetes.io/name=web", status.Selector)
			for condType, want := range map[string]metav1.ConditionStatus{
				v1alpha1.ConditionReady: tt.wantReady, v1alpha1.ConditionProgressing: tt.wantProgressing, v1alpha1.ConditionDegraded: tt.wantDegraded,
			} {
				c := meta.FindStatusCondition(status.Conditions, condType)
				require.NotNil(t, c, "condition %s", condType)
				assert.Equal(t, want, c.Status, "condition %s", condType)
				assert.Equal(t, tt.app.Generation, c.ObservedGeneration, "condition %s", condType)
				assert.Equal(t, tt.wantMessage, c.Message, "condition %s", condType)
			}
			reasonOf := v1alpha1.ConditionReady
			if tt.wantDegraded == metav1.ConditionTrue {
				reasonOf = v1alpha1.ConditionDegraded
			}
			assert.Equal(t, tt.wantReason, meta.FindStatusCondition(status.Conditions, reasonOf).Reason)
		})
	}
}

func TestComputeStatusCounts(t *testing.T) {
	app := teleApp("web")
	status := computeStatus(app, ownedDeployment(app, rolledOut(4, 2, 3, 1)), nil, nil)

	assert.Equal(t, int32(4), status.Replicas)
	assert.Equal(t, int32(2), status.UpdatedReplicas)
	assert.Equal(t, int32(3), status.ReadyReplicas)
	assert.Equal(t, int32(1), status.AvailableReplicas)

	failed := computeStatus(app, nil, nil, notOwned("Deployment", app))
	assert.Zero(t, failed.Replicas, "a TeleApp without a Deployment of its own has no replicas")
}

func TestComputeStatusIsStable(t *testing.T) {
	app := teleApp("web")
	d := ownedDeployment(app, rolledOut(3, 3, 3, 3))
	app.Status = computeStatus(app, d, nil, nil)
	past := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	for i := range app.Status.Conditions {
		app.Status.Conditions[i].LastTransitionTime = past
	}

	again := computeStatus(app, d, nil, nil)

	assert.Equal(t, app.Status, again, "recomputing an unchanged status must yield it unchanged (no status writes)")

	degraded := computeStatus(app, d, cached(appPod(app, "web-a", waiting("ErrImagePull"))), nil)
	ready := meta.FindStatusCondition(degraded.Conditions, v1alpha1.ConditionReady)
	assert.True(t, ready.LastTransitionTime.After(past.Time), "a condition that flips gets a new transition time")
}
