// Package store is a small key/value store kept in ConfigMaps of teleop's own
// namespace. It holds the chat side's state (per-chat namespaces, open
// conversations, handled update IDs) so that a restart or a new leader
// continues where the old process stopped.
//
// Layout: every bucket is one ConfigMap named teleop-<bucket>; when a bucket
// grows it is split by key hash into shards teleop-<bucket>, teleop-<bucket>-1,
// ... teleop-<bucket>-(N-1), and shard 0 records N in its annotation
// teleop.io/shards. All carry the labels app.kubernetes.io/managed-by=teleop
// and teleop.io/bucket=<bucket>.
//
// Single writer: the store is meant to be used by the leader only. Reads are
// served from memory after a bucket's first load, so a process that did not
// write a change will not see it until it creates a new Store; a new leader
// therefore builds a fresh Store, which loads everything anew. Writes still use
// optimistic concurrency (resourceVersion), so a stray second writer is merged
// with rather than overwritten: on a conflict the shard is re-read, the other
// writer's entries are taken over, and this store's pending changes are
// applied on top.
//
// Writes are coalesced: Put and Delete change memory at once and the change is
// written within Options.WriteDelay together with every other change made
// meanwhile. A caller that must know its change is durable before it replies
// calls Flush, which writes at once; Flush calls that arrive while a write is
// in flight share the next write (group commit).
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Options tunes a Store; the zero value gives the defaults.
type Options struct {
	// WriteDelay is the write-behind window: changes made within it go out in
	// one Update per shard. Default 50ms.
	WriteDelay time.Duration
	// CommitDelay is how long Flush waits for other Flushes to share its
	// write (group commit): it trades that much latency for far fewer
	// rounds under load. Default 2ms.
	CommitDelay time.Duration
	// ShardBytes is the size a shard aims to stay under; a bucket is split
	// into twice as many shards when it reaches three quarters of
	// ShardBytes × shards. A write rewrites one whole shard, so small shards
	// keep writes fast. Default 64 KiB (a ConfigMap holds at most 1 MiB).
	ShardBytes int
	// MaxShards bounds the number of ConfigMaps of one bucket. Default 256
	// (with the default ShardBytes, 12 MiB of entries).
	MaxShards int
	// MaxEntries bounds the entries of one bucket. Default 100,000.
	MaxEntries int
	// MaxValueBytes bounds one value. Default 64 KiB.
	MaxValueBytes int
	// Now is the clock for expiry; time.Now by default.
	Now func() time.Time
	// Logger receives one line per failed or retried write; slog.Default by default.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.WriteDelay <= 0 {
		o.WriteDelay = 50 * time.Millisecond
	}
	if o.CommitDelay <= 0 {
		o.CommitDelay = 2 * time.Millisecond
	}
	if o.ShardBytes <= 0 {
		o.ShardBytes = 64 << 10
	}
	if o.MaxShards <= 0 {
		o.MaxShards = 256
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100_000
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = 64 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Errors returned for input the store refuses; nothing is changed when they
// are returned.
var (
	ErrInvalidBucket = errors.New("invalid bucket name")
	ErrInvalidKey    = errors.New("invalid key")
	ErrValueTooLarge = errors.New("value too large")
	ErrBucketFull    = errors.New("bucket full")
)

// bucketName keeps ConfigMap names (teleop-<bucket>-<shard>) valid DNS names.
var bucketName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$`)

// Store is a key/value store in ConfigMaps. It is safe for concurrent use.
type Store struct {
	client    kubernetes.Interface
	namespace string
	opts      Options
	log       *slog.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
	// gen counts changes; durable is the highest gen known to be written.
	gen, durable uint64
	// rounds counts write rounds started; lastErr is the error of the last
	// round, if it failed, and failedRound its number.
	rounds      uint64
	lastErr     error
	failedRound uint64
	// roundDone is closed and replaced when a write round ends.
	roundDone chan struct{}
	timer     *time.Timer
	// retryDelay is the back-off after failed rounds; 0 after a success.
	retryDelay time.Duration

	// flushMu serialises write rounds.
	flushMu sync.Mutex
}

// New returns a Store keeping its buckets in ConfigMaps of namespace.
// Nothing is read until a bucket is first used.
func New(client kubernetes.Interface, namespace string, opts Options) *Store {
	opts = opts.withDefaults()
	return &Store{
		client:    client,
		namespace: namespace,
		opts:      opts,
		log:       opts.Logger.With("component", "store", "namespace", namespace),
		buckets:   map[string]*bucket{},
		roundDone: make(chan struct{}),
	}
}

// Get returns the value of key in bucket; found is false for a missing or
// expired key.
func (s *Store) Get(ctx context.Context, bucketName, key string) ([]byte, bool, error) {
	b, err := s.bucket(ctx, bucketName)
	if err != nil {
		return nil, false, err
	}
	if err := validateKey(key); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := b.get(key)
	if !ok || e.expired(s.opts.Now()) {
		return nil, false, nil
	}
	return append([]byte(nil), e.value...), true, nil
}

// Put sets key in bucket to value; ttl 0 keeps it until deleted. The change is
// visible to Get at once and written within Options.WriteDelay; call Flush to
// wait for it to be written.
func (s *Store) Put(ctx context.Context, bucketName, key string, value []byte, ttl time.Duration) error {
	b, err := s.bucket(ctx, bucketName)
	if err != nil {
		return err
	}
	if err := validateKey(key); err != nil {
		return err
	}
	if len(value) > s.opts.MaxValueBytes {
		return fmt.Errorf("%w: %d bytes for %s/%s, at most %d", ErrValueTooLarge, len(value), bucketName, key, s.opts.MaxValueBytes)
	}
	e := entry{value: append([]byte(nil), value...)}
	if ttl > 0 {
		e.expires = s.opts.Now().Add(ttl)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := b.put(key, e, s.opts); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucketName, key, err)
	}
	s.changed()
	return nil
}

// Delete removes key from bucket; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, bucketName, key string) error {
	b, err := s.bucket(ctx, bucketName)
	if err != nil {
		return err
	}
	if err := validateKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.remove(key) {
		s.changed()
	}
	return nil
}

// Flush writes every pending change now and returns when all changes made
// before the call are written, or with the error that kept them from it
// (they stay pending and are retried). Call it before replying when a change
// must survive a crash, and on shutdown.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	want, after := s.gen, s.rounds
	s.mu.Unlock()
	go func() {
		time.Sleep(s.opts.CommitDelay) // let concurrent Flushes join this round
		s.writeRound(context.WithoutCancel(ctx))
	}()
	return s.waitDurable(ctx, want, after)
}

// changed records a change and arms the write-behind timer; s.mu is held.
func (s *Store) changed() {
	s.gen++
	if s.timer == nil {
		s.timer = time.AfterFunc(s.opts.WriteDelay, func() {
			s.writeRound(context.Background())
		})
	}
}

// waitDurable waits until gen want is written, or a round started after
// round number after failed.
func (s *Store) waitDurable(ctx context.Context, want, after uint64) error {
	for {
		s.mu.Lock()
		if s.durable >= want {
			s.mu.Unlock()
			return nil
		}
		if s.lastErr != nil && s.failedRound > after {
			err := s.lastErr
			s.mu.Unlock()
			return err
		}
		done := s.roundDone
		s.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("wait for store write: %w", ctx.Err())
		}
	}
}

// bucket returns the named bucket, loading it from the cluster on first use.
func (s *Store) bucket(ctx context.Context, name string) (*bucket, error) {
	if !bucketName.MatchString(name) {
		return nil, fmt.Errorf("%w %q: lowercase letters, digits and '-', at most 40 characters", ErrInvalidBucket, name)
	}
	s.mu.Lock()
	b, ok := s.buckets[name]
	if !ok {
		b = newBucket(name)
		s.buckets[name] = b
	}
	s.mu.Unlock()

	b.loadMu.Lock()
	defer b.loadMu.Unlock()
	if b.loaded {
		return b, nil
	}
	shards, err := s.readShards(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load bucket %s: %w", name, err)
	}
	s.mu.Lock()
	b.load(shards, s.opts.Now())
	s.mu.Unlock()
	b.loaded = true
	return b, nil
}

// shardOf places key among n shards.
func shardOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Range calls fn with every unexpired entry of bucket, in no particular
// order, until fn returns false. It works on a snapshot, so fn may call the
// store.
func (s *Store) Range(ctx context.Context, bucketName string, fn func(key string, value []byte) bool) error {
	b, err := s.bucket(ctx, bucketName)
	if err != nil {
		return err
	}
	type kv struct {
		key   string
		value []byte
	}
	s.mu.Lock()
	now := s.opts.Now()
	snapshot := make([]kv, 0, b.count)
	for _, sh := range b.shards {
		for key, e := range sh.entries {
			if !e.expired(now) {
				snapshot = append(snapshot, kv{key, e.value})
			}
		}
	}
	s.mu.Unlock()
	for _, e := range snapshot {
		if !fn(e.key, append([]byte(nil), e.value...)) {
			return nil
		}
	}
	return nil
}
