package announce

import (
	"encoding/json"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// actorOf tells who made the latest change of the spec field at path (e.g.
// "spec", "replicas"), reading the object's managedFields: the manager whose
// entry owns the field and is the most recent. When that same write also set
// apps.AnnotationLastChangedBy (a change from a chat through operator/apps), the
// annotation names the person; otherwise the manager's name (kubectl-scale,
// kubectl-edit, ...) is the best the cluster can tell.
func actorOf(meta metav1.ObjectMeta, path ...string) string {
	var latest *metav1.ManagedFieldsEntry
	for i := range meta.ManagedFields {
		entry := &meta.ManagedFields[i]
		if !owns(entry, path...) {
			continue
		}
		// managedFields times have a resolution of a second: on a tie the
		// later entry wins, which is as good a guess as any.
		if latest == nil || !entryTime(entry).Before(entryTime(latest)) {
			latest = entry
		}
	}
	if latest == nil {
		return ""
	}
	if by := meta.Annotations[apps.AnnotationLastChangedBy]; by != "" && owns(latest, "metadata", "annotations", apps.AnnotationLastChangedBy) {
		return by
	}
	return managerName(latest)
}

// managerName names the writer of a managedFields entry. kubectl scale
// writes through the scale subresource without a field manager of its own,
// so the API server records "kubectl" with subresource "scale"; it is told
// apart as "kubectl-scale", in the manner of kubectl-edit and kubectl-patch.
func managerName(e *metav1.ManagedFieldsEntry) string {
	if e.Subresource == "" || strings.HasSuffix(e.Manager, "-"+e.Subresource) {
		return e.Manager
	}
	return e.Manager + "-" + e.Subresource
}

func entryTime(e *metav1.ManagedFieldsEntry) time.Time {
	if e.Time == nil {
		return time.Time{}
	}
	return e.Time.Time
}

// owns reports whether the managedFields entry's field set contains path or
// something below it. FieldsV1 is JSON like {"f:spec":{"f:replicas":{}}}.
func owns(e *metav1.ManagedFieldsEntry, path ...string) bool {
	if e.FieldsV1 == nil {
		return false
	}
	var node map[string]json.RawMessage
	if err := json.Unmarshal(e.FieldsV1.Raw, &node); err != nil {
		return false
	}
	for i, name := range path {
		raw, ok := node["f:"+name]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		node = nil
		if err := json.Unmarshal(raw, &node); err != nil {
			return false
		}
	}
	return true
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
