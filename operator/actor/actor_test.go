package actor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/apps"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// managed builds a managedFields entry of manager at t0+sec owning fields (FieldsV1 JSON).
func managed(manager string, sec int, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{
		Manager:    manager,
		Operation:  metav1.ManagedFieldsOperationUpdate,
		Time:       &metav1.Time{Time: t0.Add(time.Duration(sec) * time.Second)},
		FieldsType: "FieldsV1",
		FieldsV1:   &metav1.FieldsV1{Raw: []byte(fields)},
	}
}

const (
	replicasField = `{"f:spec":{"f:replicas":{}}}`
	imageField    = `{"f:spec":{"f:image":{}}}`
	statusField   = `{"f:status":{"f:phase":{}}}`
	chatWrite     = `{"f:metadata":{"f:annotations":{"f:teleop.io/last-changed-by":{},"f:teleop.io/last-command":{}}},"f:spec":{"f:replicas":{}}}`
)

// ofCases are managedFields and who Of names as the actor of path.
var ofCases = []struct {
	name        string
	fields      []metav1.ManagedFieldsEntry
	annotations map[string]string
	path        []string
	want        string
}{
	{
		name:   "kubectl scale owns the replicas",
		fields: []metav1.ManagedFieldsEntry{managed("kubectl-client-side-apply", 0, `{"f:spec":{"f:image":{},"f:replicas":{}}}`), managed("kubectl-scale", 10, replicasField)},
		path:   []string{"spec", "replicas"},
		want:   "kubectl-scale",
	},
	{
		name: "kubectl scale through the scale subresource",
		fields: []metav1.ManagedFieldsEntry{managed("kubectl-create", 0, imageField), func() metav1.ManagedFieldsEntry {
			e := managed("kubectl", 10, replicasField)
			e.Subresource = "scale"
			return e
		}()},
		path: []string{"spec", "replicas"},
		want: "kubectl-scale",
	},
	{
		name:   "the latest spec change wins, status writes do not count",
		fields: []metav1.ManagedFieldsEntry{managed("kubectl-scale", 5, replicasField), managed("kubectl-edit", 8, imageField), managed("teleop", 20, statusField)},
		path:   []string{"spec"},
		want:   "kubectl-edit",
	},
	{
		name:        "a change from a chat names the person",
		fields:      []metav1.ManagedFieldsEntry{managed("kubectl-create", 0, imageField), managed("teleop-apps", 10, chatWrite)},
		annotations: map[string]string{apps.AnnotationLastChangedBy: "telegram:123 (@alice)"},
		path:        []string{"spec", "replicas"},
		want:        "telegram:123 (@alice)",
	},
	{
		name:        "kubectl after the chat: the annotation is stale",
		fields:      []metav1.ManagedFieldsEntry{managed("teleop-apps", 10, `{"f:metadata":{"f:annotations":{"f:teleop.io/last-changed-by":{}}}}`), managed("kubectl-scale", 30, replicasField)},
		annotations: map[string]string{apps.AnnotationLastChangedBy: "telegram:123 (@alice)"},
		path:        []string{"spec", "replicas"},
		want:        "kubectl-scale",
	},
	{
		name: "no managedFields: nobody to name",
		path: []string{"spec"},
		want: "",
	},
	{
		name:   "unreadable fields are skipped",
		fields: []metav1.ManagedFieldsEntry{managed("broken", 50, `{"f:spec":`), managed("kubectl-edit", 1, replicasField)},
		path:   []string{"spec", "replicas"},
		want:   "kubectl-edit",
	},
}

func TestOf(t *testing.T) {
	for _, tt := range ofCases {
		t.Run(tt.name, func(t *testing.T) {
			meta := metav1.ObjectMeta{ManagedFields: tt.fields, Annotations: tt.annotations}
			assert.Equal(t, tt.want, Of(meta, tt.path...).By)
		})
	}
}

// TestSlimTellsTheSameActors: what Slim keeps names the same actor, at the
// same time, as the whole managedFields, and nothing else is kept.
func TestSlimTellsTheSameActors(t *testing.T) {
	for _, tt := range ofCases {
		t.Run(tt.name, func(t *testing.T) {
			full := metav1.ObjectMeta{ManagedFields: tt.fields, Annotations: tt.annotations}
			slim := metav1.ObjectMeta{ManagedFields: Slim(tt.fields, "image", "replicas"), Annotations: tt.annotations}
			assert.Equal(t, Of(full, tt.path...), Of(slim, tt.path...))
		})
	}

	slim := Slim([]metav1.ManagedFieldsEntry{
		managed("kubectl-create", 0, `{"f:spec":{"f:image":{},"f:env":{}},"f:metadata":{"f:labels":{}}}`),
		managed("teleop-apps", 10, chatWrite),
		managed("teleop", 20, statusField),
	}, "image", "replicas")
	want := []metav1.ManagedFieldsEntry{
		managed("kubectl-create", 0, imageField),
		managed("teleop-apps", 10, `{"f:metadata":{"f:annotations":{"f:teleop.io/last-changed-by":{}}},"f:spec":{"f:replicas":{}}}`),
	}
	assert.Equal(t, want, slim, "only the named spec fields and the chat annotation are kept; status writers are dropped")
}

// BenchmarkSlim slims the managedFields a TeleApp has after teleop has
// reconciled it: its creator's spec, teleop's status and the announcer's
// annotations. A cache of TeleApps runs this once per object it fills.
func BenchmarkSlim(b *testing.B) {
	condition := func(kind string) string {
		return `"k:{\"type\":\"` + kind + `\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:observedGeneration":{},"f:reason":{},"f:status":{},"f:type":{}}`
	}
	status := `{"f:status":{".":{},"f:conditions":{".":{},` + condition("Available") + `,` + condition("Progressing") + `,` + condition("Degraded") + `,` + condition("Ready") +
		`},"f:history":{},"f:observedGeneration":{},"f:phase":{},"f:readyReplicas":{},"f:replicas":{}}}`
	entries := []metav1.ManagedFieldsEntry{
		managed("bench", 0, `{"f:spec":{".":{},"f:image":{},"f:replicas":{}}}`),
		managed("teleop", 5, status),
		managed("teleop-announcer", 6, `{"f:metadata":{"f:annotations":{".":{},"f:teleop.io/announced":{}}}}`),
		managed("teleop", 7, `{"f:metadata":{"f:finalizers":{".":{},"v:\"teleop.io/notify\"":{}}}}`),
	}
	for b.Loop() {
		Slim(entries, "image", "replicas", "restartedAt")
	}
}
