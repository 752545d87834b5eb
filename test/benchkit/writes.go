package benchkit

import (
	"maps"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// What a counted write changed.
const (
	WriteCreate   = "create"
	WriteSpec     = "spec"
	WriteStatus   = "status"
	WriteMetadata = "metadata"
)

// Writes counts the writes that reached the API server from the watch
// events of informers: a watch delivers every change of an object, so each
// event is one write that got through, at no cost to the server. Counts
// are kept by kind and what changed ("TeleApp status"), and, for TeleApps,
// by name as well.
type Writes struct {
	mu      sync.Mutex
	counts  map[string]int
	byName  map[string]map[string]int // kind → name → count
	removes []func()
}

// NewWrites counts from now until Stop.
func NewWrites() *Writes {
	return &Writes{counts: map[string]int{}, byName: map[string]map[string]int{}}
}

// TeleApps counts creates and the writes of spec, status and metadata
// (annotations, finalizers) of informer's TeleApps.
func (w *Writes) TeleApps(tb testing.TB, informer cache.SharedIndexInformer) {
	tb.Helper()
	w.watch(tb, informer, func(old, obj any) (string, string) {
		app, ok := obj.(*v1alpha1.TeleApp)
		if !ok {
			return "", ""
		}
		if old == nil {
			return "TeleApp " + WriteCreate, app.Name
		}
		before := old.(*v1alpha1.TeleApp)
		switch {
		case before.ResourceVersion == app.ResourceVersion:
			return "", "" // a resync, not a write
		case !equality.Semantic.DeepEqual(before.Status, app.Status):
			return "TeleApp " + WriteStatus, app.Name
		case before.Generation != app.Generation:
			return "TeleApp " + WriteSpec, app.Name
		}
		return "TeleApp " + WriteMetadata, app.Name
	})
}

// Deployments counts creates and spec writes of informer's Deployments;
// their status is the Deployment controller's.
func (w *Writes) Deployments(tb testing.TB, informer cache.SharedIndexInformer) {
	tb.Helper()
	w.watch(tb, informer, func(old, obj any) (string, string) {
		d, ok := obj.(*appsv1.Deployment)
		switch {
		case !ok:
			return "", ""
		case old == nil:
			return "Deployment " + WriteCreate, ""
		case old.(*appsv1.Deployment).Generation != d.Generation:
			return "Deployment " + WriteSpec, ""
		}
		return "", ""
	})
}

// Events counts the Events component records, new or aggregated into an
// existing one (each is a write).
func (w *Writes) Events(tb testing.TB, informer cache.SharedIndexInformer, component string) {
	tb.Helper()
	w.watch(tb, informer, func(old, obj any) (string, string) {
		e, ok := obj.(*corev1.Event)
		if !ok || e.Source.Component != component {
			return "", ""
		}
		if old != nil && old.(*corev1.Event).ResourceVersion == e.ResourceVersion {
			return "", ""
		}
		return "Event", ""
	})
}

// watch counts what classify names for each add and update; an empty kind
// is not counted, an empty name not counted by name.
func (w *Writes) watch(tb testing.TB, informer cache.SharedIndexInformer, classify func(old, obj any) (kind, name string)) {
	tb.Helper()
	note := func(old, obj any) {
		kind, name := classify(old, obj)
		if kind == "" {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.counts[kind]++
		if name != "" {
			if w.byName[kind] == nil {
				w.byName[kind] = map[string]int{}
			}
			w.byName[kind][name]++
		}
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initialList bool) {
			if !initialList {
				note(nil, obj)
			}
		},
		UpdateFunc: note,
	})
	if err != nil {
		tb.Fatalf("watch writes: %v", err)
	}
	w.removes = append(w.removes, func() { _ = informer.RemoveEventHandler(reg) })
}

// Counts is a copy of the counts by kind so far.
func (w *Writes) Counts() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.counts)
}

// ByName is a copy of the TeleApp writes of kind ("TeleApp status") by
// name so far.
func (w *Writes) ByName(kind string) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.byName[kind])
}

// Stop ends the counting.
func (w *Writes) Stop() {
	for _, remove := range w.removes {
		remove()
	}
}

// Since returns the counts of now minus those of before, without zeros.
func Since(now, before map[string]int) map[string]int {
	diff := map[string]int{}
	for k, n := range now {
		if d := n - before[k]; d != 0 {
			diff[k] = d
		}
	}
	return diff
}
