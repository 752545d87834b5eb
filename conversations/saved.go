package conversations

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/pager"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// LabelFlow marks the ConfigMap of an open conversation and names its flow:
// kubectl get cm -l teleop.io/conversation -L teleop.io/conversation.
const LabelFlow = "teleop.io/conversation"

// dataKey holds the session's JSON in its ConfigMap.
const dataKey = "session"

// saved is what this process knows of one conversation's ConfigMap.
type saved struct{ version, value string }

// savedSessions keeps each open conversation in a ConfigMap of its own,
// named by its key, written with the resourceVersion last seen (optimistic
// concurrency): one create, update or delete per change. The leader is the
// only writer, so it loads them all once and then keeps its copy by writing
// through it; a write refused because another writer got there first (an
// old leader, kubectl) re-reads that ConfigMap and fails, and the next try
// starts from what is there. The engine serialises the calls for one key.
type savedSessions struct {
	configMaps corev1client.ConfigMapInterface

	mu  sync.Mutex
	all map[string]saved // nil until loaded
}

// locked runs fn on what is known of every conversation, holding the lock;
// the first call reads all their ConfigMaps.
func (s *savedSessions) locked(ctx context.Context, fn func(all map[string]saved)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		all := map[string]saved{}
		list := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return s.configMaps.List(ctx, opts)
		})
		err := list.EachListItem(ctx, metav1.ListOptions{LabelSelector: LabelFlow}, func(obj runtime.Object) error {
			cm := obj.(*corev1.ConfigMap)
			all[cm.Name] = saved{cm.ResourceVersion, cm.Data[dataKey]}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load open conversations: %w", err)
		}
		s.all = all
	}
	fn(s.all)
	return nil
}

func (s *savedSessions) get(ctx context.Context, key string) (v saved, found bool, err error) {
	err = s.locked(ctx, func(all map[string]saved) { v, found = all[key] })
	return v, found, err
}

// put creates or replaces the conversation under key.
func (s *savedSessions) put(ctx context.Context, key, flow string, value []byte) error {
	old, exists, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: key, ResourceVersion: old.version, Labels: map[string]string{
			LabelFlow: flow, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		}},
		Data: map[string]string{dataKey: string(value)},
	}
	if exists {
		cm, err = s.configMaps.Update(ctx, cm, metav1.UpdateOptions{})
	} else {
		cm, err = s.configMaps.Create(ctx, cm, metav1.CreateOptions{})
	}
	if err != nil {
		return s.reread(ctx, key, err)
	}
	s.remember(key, saved{cm.ResourceVersion, cm.Data[dataKey]})
	return nil
}

// delete removes the conversation under key, if it is still the version
// this process wrote.
func (s *savedSessions) delete(ctx context.Context, key string) error {
	old, exists, err := s.get(ctx, key)
	if err != nil || !exists {
		return err
	}
	err = s.configMaps.Delete(ctx, key, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &old.version}})
	if err != nil && !apierrors.IsNotFound(err) {
		return s.reread(ctx, key, err)
	}
	s.remember(key, saved{})
	return nil
}

// reread takes over what is in the cluster under key after a write failed
// with cause, and returns cause.
func (s *savedSessions) reread(ctx context.Context, key string, cause error) error {
	cm, err := s.configMaps.Get(ctx, key, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s.remember(key, saved{})
	case err == nil:
		s.remember(key, saved{cm.ResourceVersion, cm.Data[dataKey]})
	}
	return fmt.Errorf("write conversation %s: %w", key, cause)
}

// remember records v under key; the zero saved forgets key.
func (s *savedSessions) remember(key string, v saved) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == (saved{}) {
		delete(s.all, key)
		return
	}
	s.all[key] = v
}

func (s *savedSessions) count(ctx context.Context) (n int, err error) {
	err = s.locked(ctx, func(all map[string]saved) { n = len(all) })
	return n, err
}

// snapshot returns every open conversation's key and value.
func (s *savedSessions) snapshot(ctx context.Context) (out map[string]string, err error) {
	err = s.locked(ctx, func(all map[string]saved) {
		out = make(map[string]string, len(all))
		for key, v := range all {
			out[key] = v.value
		}
	})
	return out, err
}
