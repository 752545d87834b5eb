package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

const (
	// conflictAttempts bounds how often one shard write re-reads and retries
	// after a conflict within a round.
	conflictAttempts = 5
	minRetryDelay    = time.Second
	maxRetryDelay    = 30 * time.Second
)

// shardWrite is one ConfigMap to write in a round.
type shardWrite struct {
	i  int
	sh *shard
	cm *corev1.ConfigMap
	// create is set when the ConfigMap does not exist yet.
	create bool
	err    error
}

// bucketWrite is what a round writes of one bucket: when the bucket is being
// split, the new shards go first (phase 0), so an interruption never leaves
// shard 0 announcing shards that do not exist yet.
type bucketWrite struct {
	b        *bucket
	snapshot map[string]struct{}
	shards   int
	phases   [2][]*shardWrite
}

// readShards reads the ConfigMaps of a bucket in one List; missing shards
// are nil.
func (s *Store) readShards(ctx context.Context, name string) ([]*corev1.ConfigMap, error) {
	list, err := s.client.CoreV1().ConfigMaps(s.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, LabelBucket: name}.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list configmaps of bucket %s in %s: %w", name, s.namespace, err)
	}
	byName := map[string]*corev1.ConfigMap{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	first := byName[shardName(name, 0)]
	if first == nil {
		return []*corev1.ConfigMap{nil}, nil
	}
	n := 1
	if v, ok := first.Annotations[AnnotationShards]; ok {
		n, err = strconv.Atoi(v)
		if err != nil || n < 1 || n > s.opts.MaxShards {
			return nil, fmt.Errorf("configmap %s: annotation %s=%q is not a shard count between 1 and %d", first.Name, AnnotationShards, v, s.opts.MaxShards)
		}
	}
	cms := make([]*corev1.ConfigMap, n)
	for i := range cms {
		cms[i] = byName[shardName(name, i)]
	}
	return cms, nil
}

func (s *Store) readShard(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get configmap %s/%s: %w", s.namespace, name, err)
	}
	return cm, nil
}

// writeRound writes every shard with pending changes. Rounds run one at a
// time; changes made while one runs go out in the next.
func (s *Store) writeRound(ctx context.Context) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()

	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	gen := s.gen
	if s.durable >= gen {
		s.mu.Unlock()
		return
	}
	s.rounds++
	round := s.rounds
	var plans []*bucketWrite
	for _, b := range s.buckets {
		if p := s.plan(b); p != nil {
			plans = append(plans, p)
		}
	}
	s.mu.Unlock()

	var errs []error
	for _, p := range plans {
		if err := s.writeBucket(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr, s.failedRound = err, round
		s.retryLater()
		s.log.Warn("store write failed; changes stay pending", "error", err)
	} else {
		s.durable = max(s.durable, gen)
		s.lastErr, s.retryDelay = nil, 0
	}
	close(s.roundDone)
	s.roundDone = make(chan struct{})
}

// plan takes b's pending changes and renders the shards to write; s.mu is held.
func (s *Store) plan(b *bucket) *bucketWrite {
	splitting := b.persistedShards != len(b.shards)
	if len(b.pending) == 0 && !splitting {
		return nil
	}
	p := &bucketWrite{b: b, snapshot: b.pending, shards: len(b.shards)}
	b.pending = map[string]struct{}{}
	dirty := map[int]bool{}
	if splitting {
		// A split moved entries between shards and changed the count that
		// shard 0 carries: every shard is rewritten.
		for i := range b.shards {
			dirty[i] = true
		}
	}
	for key := range p.snapshot {
		dirty[shardOf(key, len(b.shards))] = true
	}
	now := s.opts.Now()
	for i := range dirty {
		w := &shardWrite{i: i, sh: b.shards[i], cm: b.configMap(s.namespace, i, now), create: !b.shards[i].exists}
		phase := 1
		if i >= b.persistedShards {
			phase = 0
		}
		p.phases[phase] = append(p.phases[phase], w)
	}
	return p
}

// writeBucket writes a bucket's shards, phase by phase, in parallel within a
// phase. On failure the changes are put back as pending.
func (s *Store) writeBucket(ctx context.Context, p *bucketWrite) error {
	var err error
	for _, phase := range p.phases {
		if err = s.writeShards(ctx, p, phase); err != nil {
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for key := range p.snapshot {
			p.b.pending[key] = struct{}{}
		}
		return fmt.Errorf("write bucket %s: %w", p.b.name, err)
	}
	p.b.persistedShards = p.shards
	return nil
}

func (s *Store) writeShards(ctx context.Context, p *bucketWrite, writes []*shardWrite) error {
	var wg sync.WaitGroup
	for _, w := range writes {
		wg.Go(func() { w.err = s.writeShard(ctx, p, w) })
	}
	wg.Wait()
	var errs []error
	for _, w := range writes {
		errs = append(errs, w.err)
	}
	return errors.Join(errs...)
}

// writeShard creates or updates one ConfigMap with its resourceVersion. On a
// conflict it re-reads the ConfigMap, takes over what another writer changed
// (except keys this store has changed itself) and tries again.
func (s *Store) writeShard(ctx context.Context, p *bucketWrite, w *shardWrite) error {
	cms := s.client.CoreV1().ConfigMaps(s.namespace)
	for attempt := 1; ; attempt++ {
		var written *corev1.ConfigMap
		var err error
		if w.create {
			written, err = cms.Create(ctx, w.cm, metav1.CreateOptions{})
		} else {
			written, err = cms.Update(ctx, w.cm, metav1.UpdateOptions{})
		}
		if err == nil {
			s.mu.Lock()
			w.sh.exists, w.sh.resourceVersion = true, written.ResourceVersion
			s.mu.Unlock()
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("write configmap %s: %w", w.cm.Name, err)
		}
		if attempt == conflictAttempts {
			return fmt.Errorf("write configmap %s: still conflicting after %d attempts: %w", w.cm.Name, attempt, err)
		}
		fresh, rerr := s.readShard(ctx, w.cm.Name)
		if rerr != nil {
			return rerr
		}
		s.log.Info("store write conflict; merged the other writer's changes", "configmap", w.cm.Name, "attempt", attempt)
		s.mu.Lock()
		p.b.merge(w.i, w.sh, fresh, p.snapshot)
		w.cm = p.b.configMap(s.namespace, w.i, s.opts.Now())
		w.create = !w.sh.exists
		s.mu.Unlock()
	}
}

// retryLater arms the timer for another round after a failure, backing off;
// s.mu is held.
func (s *Store) retryLater() {
	s.retryDelay = min(max(2*s.retryDelay, minRetryDelay), maxRetryDelay)
	if s.timer == nil {
		s.timer = time.AfterFunc(s.retryDelay, func() { s.writeRound(context.Background()) })
	}
}
