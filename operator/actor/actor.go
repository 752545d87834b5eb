// Package actor tells from a TeleApp's managedFields who made the latest
// change of a field, and when: the chat user when the change came through
// operator/apps, else the field manager (kubectl-edit, kubectl-scale, ...).
// The announcer names the actor of a scale or restart with it, the operator
// the author of each revision in status.history.
package actor

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/apps"
)

// Change is who made the latest change of a field, and when.
type Change struct {
	// By is the chat user or the field manager; "" when nobody owns the field.
	By string
	// At is when the manager last wrote, to the second; zero when unknown.
	At time.Time
}

// Of tells who made the latest change of the field at path (e.g.
// "spec", "replicas"), reading the object's managedFields: the manager whose
// entry owns the field and is the most recent. When that same write also set
// apps.AnnotationLastChangedBy (a change from a chat through operator/apps), the
// annotation names the person; otherwise the manager's name (kubectl-scale,
// kubectl-edit, ...) is the best the cluster can tell.
func Of(meta metav1.ObjectMeta, path ...string) Change {
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
		return Change{}
	}
	change := Change{By: managerName(latest), At: entryTime(latest)}
	if by := meta.Annotations[apps.AnnotationLastChangedBy]; by != "" && owns(latest, "metadata", "annotations", apps.AnnotationLastChangedBy) {
		change.By = by
	}
	return change
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

// Slim keeps of managedFields only what Of needs to tell who changed the
// spec fields named: the entries that own one of them, with each field set
// cut down to those fields and the apps.AnnotationLastChangedBy annotation.
// A cache of TeleApps holds this instead of the whole managedFields (often
// the largest part of an object), so telling an actor needs no API read.
func Slim(entries []metav1.ManagedFieldsEntry, specFields ...string) []metav1.ManagedFieldsEntry {
	var kept []metav1.ManagedFieldsEntry
	for _, e := range entries {
		set, ok := specFieldSet(&e)
		if !ok {
			continue
		}
		spec := map[string]struct{}{}
		for _, field := range specFields {
			if _, owned := set.Spec["f:"+field]; owned {
				spec["f:"+field] = struct{}{}
			}
		}
		if len(spec) == 0 {
			continue
		}
		fields := map[string]any{"f:spec": spec}
		if _, owned := set.Metadata.Annotations["f:"+apps.AnnotationLastChangedBy]; owned {
			fields["f:metadata"] = map[string]any{"f:annotations": map[string]any{"f:" + apps.AnnotationLastChangedBy: struct{}{}}}
		}
		raw, err := json.Marshal(fields)
		if err != nil {
			continue // a map of strings always marshals
		}
		kept = append(kept, metav1.ManagedFieldsEntry{
			Manager: e.Manager, Operation: e.Operation, APIVersion: e.APIVersion, Time: e.Time,
			FieldsType: e.FieldsType, FieldsV1: &metav1.FieldsV1{Raw: raw}, Subresource: e.Subresource,
		})
	}
	return kept
}

// fieldSet is what Slim reads of a FieldsV1: the spec fields and the
// annotations an entry owns. Decoding into it skips everything else.
type fieldSet struct {
	Spec     map[string]struct{} `json:"f:spec"`
	Metadata struct {
		Annotations map[string]struct{} `json:"f:annotations"`
	} `json:"f:metadata"`
}

var specKey = []byte(`"f:spec"`)

// specFieldSet decodes the field set of an entry that owns spec fields,
// once. Most entries of a TeleApp own none (its status writer, the
// announcer's annotations); a scan for the key passes over them without a
// decode, which a cache filling with thousands of TeleApps feels.
func specFieldSet(e *metav1.ManagedFieldsEntry) (fieldSet, bool) {
	var set fieldSet
	if e.FieldsV1 == nil || !bytes.Contains(e.FieldsV1.Raw, specKey) {
		return set, false
	}
	if err := json.Unmarshal(e.FieldsV1.Raw, &set); err != nil {
		return set, false
	}
	return set, len(set.Spec) > 0
}
