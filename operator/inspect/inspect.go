// Package inspect reads what the chat asks when something is wrong: the
// Events of an app and of what runs it, and its pods' logs through the
// pods/log subresource. It knows nothing of Telegram and reads with the
// operator's own rights; callers authorise the chat user first.
package inspect

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// MaxLogBytes bounds the log text read from one pod, so a pod writing huge
// lines cannot flood the chat or the bot's memory; the newest bytes are kept.
const MaxLogBytes = 16 << 10

// Event is one Event about an app or something it owns.
type Event struct {
	// Last is when it was last seen.
	Last time.Time
	// Type is Normal or Warning.
	Type, Reason, Message string
	// Object names what it is about, kubectl style: "pod/web-7d4b9-x2x7z".
	Object string
	// Count is how often it happened (1 at least).
	Count int32
}

// Pod is one pod of an app, as the chat needs to pick and name it.
type Pod struct {
	Name    string
	Created time.Time
	Ready   bool
}

// Reader reads Events, pods and logs.
type Reader struct {
	kube kubernetes.Interface
}

// New returns a Reader asking kube's API server.
func New(kube kubernetes.Interface) *Reader {
	return &Reader{kube: kube}
}

// Events returns the Events of TeleApp namespace/name, its Deployment, its
// ReplicaSets and their pods, newest first. Events of pods that are gone are
// found by the names their ReplicaSets give them.
func (r *Reader) Events(ctx context.Context, namespace, name string) ([]Event, error) {
	owned, err := r.ownedReplicaSets(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	list, err := r.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list events in %s: %w", namespace, err)
	}
	var events []Event
	for i := range list.Items {
		ev := &list.Items[i]
		if about(ev.InvolvedObject, name, owned) {
			events = append(events, eventOf(ev))
		}
	}
	slices.SortStableFunc(events, func(a, b Event) int { return b.Last.Compare(a.Last) })
	return events, nil
}

// about reports whether an Event's object is the TeleApp called name, its
// Deployment, one of its ReplicaSets, or a pod of one of them.
func about(obj corev1.ObjectReference, name string, replicaSets []string) bool {
	switch obj.Kind {
	case "TeleApp", "Deployment":
		return obj.Name == name
	case "ReplicaSet":
		return slices.Contains(replicaSets, obj.Name)
	case "Pod":
		return slices.ContainsFunc(replicaSets, func(rs string) bool { return strings.HasPrefix(obj.Name, rs+"-") })
	}
	return false
}

func eventOf(ev *corev1.Event) Event {
	last := ev.LastTimestamp.Time
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		last = ev.Series.LastObservedTime.Time
	case last.IsZero() && !ev.EventTime.IsZero():
		last = ev.EventTime.Time
	case last.IsZero():
		last = ev.CreationTimestamp.Time
	}
	count := max(ev.Count, 1)
	if ev.Series != nil {
		count = max(ev.Series.Count, 1)
	}
	return Event{
		Last: last, Type: ev.Type, Reason: ev.Reason, Message: strings.TrimSpace(ev.Message), Count: count,
		Object: strings.ToLower(ev.InvolvedObject.Kind) + "/" + ev.InvolvedObject.Name,
	}
}

// ownedReplicaSets names the ReplicaSets of the app's Deployment.
func (r *Reader) ownedReplicaSets(ctx context.Context, namespace, name string) ([]string, error) {
	list, err := r.kube.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: appSelector(name)})
	if err != nil {
		return nil, fmt.Errorf("list replicasets of %s/%s: %w", namespace, name, err)
	}
	var names []string
	for i := range list.Items {
		if ownedBy(list.Items[i].OwnerReferences, "Deployment", name) {
			names = append(names, list.Items[i].Name)
		}
	}
	return names, nil
}

// Pods returns the pods of TeleApp namespace/name, newest first.
func (r *Reader) Pods(ctx context.Context, namespace, name string) ([]Pod, error) {
	owned, err := r.ownedReplicaSets(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	list, err := r.kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: appSelector(name)})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s/%s: %w", namespace, name, err)
	}
	var pods []Pod
	for i := range list.Items {
		p := &list.Items[i]
		if !slices.ContainsFunc(owned, func(rs string) bool { return ownedBy(p.OwnerReferences, "ReplicaSet", rs) }) {
			continue
		}
		pods = append(pods, Pod{Name: p.Name, Created: p.CreationTimestamp.Time, Ready: podReady(p)})
	}
	slices.SortStableFunc(pods, func(a, b Pod) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return pods, nil
}

// DefaultPod is the pod whose log tells most: the newest one that is not
// Ready, else the newest. ok is false when there are none.
func DefaultPod(newestFirst []Pod) (pod Pod, ok bool) {
	if i := slices.IndexFunc(newestFirst, func(p Pod) bool { return !p.Ready }); i >= 0 {
		return newestFirst[i], true
	}
	if len(newestFirst) == 0 {
		return Pod{}, false
	}
	return newestFirst[0], true
}

// Logs returns the last lines of pod's log, read through the pods/log
// subresource, at most MaxLogBytes of them (the newest). truncated says
// that older lines were dropped to keep within that bound.
func (r *Reader) Logs(ctx context.Context, namespace, pod string, lines int64) (text string, truncated bool, err error) {
	raw, err := r.kube.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		TailLines: &lines,
		// A generous cap on what is read at all; the tail is cut below.
		LimitBytes: ptr.To[int64](8 * MaxLogBytes),
	}).DoRaw(ctx)
	if err != nil {
		return "", false, fmt.Errorf("read the log of pod %s/%s: %w", namespace, pod, err)
	}
	text = string(raw)
	if len(text) > MaxLogBytes {
		text = text[len(text)-MaxLogBytes:]
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:] // start at a whole line
		}
		truncated = true
	}
	return strings.ToValidUTF8(text, "�"), truncated, nil
}

func appSelector(name string) string {
	return labels.SelectorFromSet(labels.Set{v1alpha1.LabelName: name, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}).String()
}

func ownedBy(refs []metav1.OwnerReference, kind, name string) bool {
	for _, ref := range refs {
		if ref.Controller != nil && *ref.Controller && ref.Kind == kind && ref.Name == name {
			return true
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
