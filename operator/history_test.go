package operator

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/teleop/teleop/operator/actor"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

func TestAppendRevision(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	full := make([]v1alpha1.Revision, 0, v1alpha1.MaxHistory)
	for i := range v1alpha1.MaxHistory {
		full = append(full, v1alpha1.Revision{Revision: int64(i + 1), Image: fmt.Sprintf("nginx:1.%d", i)})
	}
	tests := []struct {
		name          string
		history       []v1alpha1.Revision
		change        actor.Change
		wantRevisions []int64
		wantAt        time.Time
		wantBy        string
	}{
		{name: "the first image", change: actor.Change{By: "kubectl-create", At: now.Add(-time.Minute)},
			wantRevisions: []int64{1}, wantAt: now.Add(-time.Minute), wantBy: "kubectl-create"},
		{name: "the next image, author unknown", history: full[:2],
			wantRevisions: []int64{1, 2, 3}, wantAt: now},
		{name: "the oldest goes when full", history: full, change: actor.Change{By: "telegram:1 (@a)", At: now},
			wantRevisions: []int64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, wantAt: now, wantBy: "telegram:1 (@a)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendRevision(append([]v1alpha1.Revision(nil), tt.history...), "nginx:2", tt.change, now)
			var revisions []int64
			for _, r := range got {
				revisions = append(revisions, r.Revision)
			}
			assert.Equal(t, tt.wantRevisions, revisions)
			latest := got[len(got)-1]
			assert.Equal(t, "nginx:2", latest.Image)
			assert.Equal(t, tt.wantBy, latest.ChangedBy)
			assert.True(t, tt.wantAt.Equal(latest.ChangedAt.Time), "changedAt %v", latest.ChangedAt)
		})
	}
}

// TestRevisionAuthorComesFromTheCache: the author of a new image is read
// from the cached TeleApp's slimmed managedFields, with no API read (one
// per create before, because the cache dropped managedFields).
func TestRevisionAuthorComesFromTheCache(t *testing.T) {
	changed := metav1.NewTime(time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC))
	app := teleApp("web", func(a *v1alpha1.TeleApp) {
		a.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate, Time: &changed, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:image":{},"f:replicas":{}}}`)},
		}}
	})
	cached, err := slimTeleApp(app.DeepCopy())
	require.NoError(t, err)
	ready := ownedDeployment(app, rolledOut(3, 3, 3, 3))
	f := newFixture(t, cached.(*v1alpha1.TeleApp), []runtime.Object{ready})
	f.tele.ClearActions()

	require.NoError(t, f.sync(app))

	for _, a := range f.tele.Actions() {
		assert.NotEqual(t, "get", a.GetVerb(), "no read of the TeleApp from the API server")
	}
	history := f.storedStatus(app).History
	require.Len(t, history, 1)
	assert.Equal(t, "kubectl-create", history[0].ChangedBy)
	assert.Equal(t, changed.Time, history[0].ChangedAt.Time)
}
