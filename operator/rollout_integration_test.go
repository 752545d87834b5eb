package operator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// TestRestartedAtRollsThePods: spec.restartedAt, written with kubectl as a
// user would, reaches the pod template annotation kubectl rollout restart
// uses, and the Deployment replaces its pods.
func TestRestartedAtRollsThePods(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(teleApp("web", "nginx:1.27", 2))
	e.waitStatus("web", v1alpha1.PhaseReady, 2)
	before, err := e.podsOf(ctx, "web")
	require.NoError(t, err)
	d := e.waitDeployment("web", hasReplicasAndImage(2, "nginx:1.27"))
	assert.NotContains(t, d.Spec.Template.Annotations, operator.AnnotationRestartedAt, "never restarted: no annotation")

	stamp := time.Now().UTC().Format(time.RFC3339)
	_, err = e.cluster.Kubectl(ctx, "-n", e.namespace, "patch", "tapp/web", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"restartedAt":%q}}`, stamp))
	require.NoError(t, err)
	e.waitDeployment("web", func(d *appsv1.Deployment) bool {
		return d.Spec.Template.Annotations[operator.AnnotationRestartedAt] == stamp
	})
	e.eventually("every pod replaced", func(ctx context.Context) (bool, string, error) {
		pods, err := e.podsOf(ctx, "web")
		if err != nil {
			return false, err.Error(), nil
		}
		old := map[string]bool{}
		for _, p := range before {
			old[p.Name] = true
		}
		fresh := 0
		for _, p := range pods {
			if !old[p.Name] && p.DeletionTimestamp == nil {
				fresh++
			}
		}
		return fresh == 2 && len(pods) == 2, fmt.Sprintf("%d pods, %d new", len(pods), fresh), nil
	})
	e.waitStatus("web", v1alpha1.PhaseReady, 2)
}

// TestHistoryRecordsImagesAndAuthors: each image a TeleApp runs becomes a
// revision in status.history with who set it (the kubectl field manager, or
// the chat user through operator/apps) and when, at most MaxHistory kept.
func TestHistoryRecordsImagesAndAuthors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(teleApp("web", "nginx:1.27", 1))
	e.waitHistory("web", 1)

	_, err := e.cluster.Kubectl(ctx, "-n", e.namespace, "patch", "tapp/web", "--type=merge", "-p", `{"spec":{"image":"nginx:1.28"}}`)
	require.NoError(t, err)
	e.waitHistory("web", 2)

	recorder, stop := apps.NewEventRecorder(e.kube, "teleop-test")
	t.Cleanup(stop)
	chat := apps.New(e.tele, recorder)
	_, _, err = chat.SetImage(ctx, e.namespace, "web", "nginx:1.29", apps.Audit{Actor: "telegram:7 (@ann)", Command: "/deploy web nginx:1.29", RequestID: "u1"})
	require.NoError(t, err)
	app := e.waitHistory("web", 3)

	history := app.Status.History
	assert.Equal(t, []string{"nginx:1.27", "nginx:1.28", "nginx:1.29"}, images(history))
	assert.Equal(t, []int64{1, 2, 3}, revisions(history))
	assert.Equal(t, "kubectl-patch", history[1].ChangedBy)
	assert.Equal(t, "telegram:7 (@ann)", history[2].ChangedBy)
	for _, r := range history {
		require.NotNil(t, r.ChangedAt, "revision %d", r.Revision)
		assert.WithinDuration(t, time.Now(), r.ChangedAt.Time, 5*time.Minute, "revision %d", r.Revision)
	}

	// a rollback is a revision of its own; the history keeps the last ten
	_, _, to, err := chat.Rollback(ctx, e.namespace, "web", apps.RollbackTarget{}, apps.Audit{Actor: "telegram:7 (@ann)", Command: "/rollback web", RequestID: "u2"})
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.28", to.Image)
	e.waitHistory("web", 4)
	for i := 30; i < 40; i++ {
		_, _, err := chat.SetImage(ctx, e.namespace, "web", fmt.Sprintf("nginx:1.%d", i), apps.Audit{Actor: "telegram:7 (@ann)", RequestID: fmt.Sprintf("v%d", i)})
		require.NoError(t, err)
		e.waitHistory("web", int64(5+i-30))
	}
	app = e.waitHistory("web", 14)
	assert.Len(t, app.Status.History, v1alpha1.MaxHistory)
	assert.Equal(t, int64(5), app.Status.History[0].Revision)

	// kubectl shows it
	out, err := e.cluster.Kubectl(ctx, "-n", e.namespace, "get", "tapp/web", "-o", "jsonpath={.status.history[-1].image}")
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.39", out)
}

// waitHistory waits until the newest revision of name's history is latest
// and names its current image.
func (e *env) waitHistory(name string, latest int64) *v1alpha1.TeleApp {
	e.t.Helper()
	var app *v1alpha1.TeleApp
	e.eventually(fmt.Sprintf("revision %d of %s", latest, name), func(ctx context.Context) (bool, string, error) {
		var err error
		if app, err = e.app(ctx, name); err != nil {
			return false, err.Error(), nil
		}
		r := app.Status.LatestRevision()
		if r == nil {
			return false, "no history", nil
		}
		return r.Revision == latest && r.Image == app.Spec.Image, fmt.Sprintf("%+v", app.Status.History), nil
	})
	return app
}

func images(h []v1alpha1.Revision) []string {
	out := make([]string, len(h))
	for i, r := range h {
		out[i] = r.Image
	}
	return out
}

func revisions(h []v1alpha1.Revision) []int64 {
	out := make([]int64, len(h))
	for i, r := range h {
		out[i] = r.Revision
	}
	return out
}
