package store

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

const (
	// AnnotationShards on shard 0 records how many shards a bucket has.
	AnnotationShards = "teleop.io/shards"
	// LabelBucket names the bucket a ConfigMap belongs to.
	LabelBucket = "teleop.io/bucket"
	// entryOverhead approximates what one entry costs in a ConfigMap's JSON
	// beyond its key and value: quotes, separators and the expiry prefix.
	entryOverhead = 24
	// maxDataKey is the longest ConfigMap data key.
	maxDataKey = 253
)

type entry struct {
	value   []byte
	expires time.Time // zero: never
}

func (e entry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// size approximates the bytes e takes in a ConfigMap under key.
func (e entry) size(key string) int {
	n := len(encodeKey(key)) + entryOverhead
	for _, c := range e.value {
		if c == '"' || c == '\\' || c < 0x20 {
			n++ // escaped in JSON
		}
		n++
	}
	return n
}

// shard is one ConfigMap of a bucket as this store knows it.
type shard struct {
	entries map[string]entry
	// exists says whether the ConfigMap exists (else it is created);
	// resourceVersion is the one last read or written.
	exists          bool
	resourceVersion string
}

type bucket struct {
	name string

	loadMu sync.Mutex // held while loading; guards loaded
	loaded bool

	// The fields below are guarded by Store.mu.
	shards []*shard
	count  int
	bytes  int
	// pending holds the keys changed since they were last written.
	pending map[string]struct{}
	// persistedShards is the shard count last written to shard 0; when
	// len(shards) is larger the bucket is being split and every shard is
	// rewritten, the new ones first.
	persistedShards int
}

func newBucket(name string) *bucket {
	return &bucket{name: name, shards: []*shard{{entries: map[string]entry{}}}, pending: map[string]struct{}{}, persistedShards: 1}
}

func (b *bucket) shardFor(key string) *shard { return b.shards[shardOf(key, len(b.shards))] }

func (b *bucket) get(key string) (entry, bool) {
	e, ok := b.shardFor(key).entries[key]
	return e, ok
}

// set stores e under key and keeps the size accounting.
func (b *bucket) set(key string, e entry) {
	sh := b.shardFor(key)
	if old, ok := sh.entries[key]; ok {
		b.bytes -= old.size(key)
	} else {
		b.count++
	}
	sh.entries[key] = e
	b.bytes += e.size(key)
}

// del removes key and reports whether it was there.
func (b *bucket) del(key string) bool {
	sh := b.shardFor(key)
	old, ok := sh.entries[key]
	if !ok {
		return false
	}
	delete(sh.entries, key)
	b.count--
	b.bytes -= old.size(key)
	return true
}

// put stores e, refusing it when the bucket is full even after dropping
// expired entries, and splits the bucket when it has grown.
func (b *bucket) put(key string, e entry, o Options) error {
	old, exists := b.get(key)
	grow := e.size(key)
	if exists {
		grow -= old.size(key)
	}
	limitBytes := o.MaxShards * o.ShardBytes * 3 / 4
	full := func() bool {
		return (!exists && b.count >= o.MaxEntries) || b.bytes+grow > limitBytes
	}
	if full() {
		b.dropExpired(o.Now())
		if full() {
			return fmt.Errorf("%w: %d entries, %d bytes (at most %d entries, %d bytes)", ErrBucketFull, b.count, b.bytes, o.MaxEntries, limitBytes)
		}
	}
	b.set(key, e)
	b.pending[key] = struct{}{}
	for b.bytes > len(b.shards)*o.ShardBytes*3/4 && len(b.shards)*2 <= o.MaxShards {
		b.split()
	}
	return nil
}

// remove deletes key and marks it for writing.
func (b *bucket) remove(key string) bool {
	if !b.del(key) {
		return false
	}
	b.pending[key] = struct{}{}
	return true
}

// dropExpired removes expired entries from memory and marks them pending so
// the next write drops them from the ConfigMaps too.
func (b *bucket) dropExpired(now time.Time) {
	for _, sh := range b.shards {
		for key, e := range sh.entries {
			if e.expired(now) {
				b.remove(key)
			}
		}
	}
}

// split doubles the shard count and redistributes the entries. The first
// half keeps its shard objects, so a write in flight still records its
// resourceVersion on the right ConfigMap.
func (b *bucket) split() {
	old := b.shards
	all := map[string]entry{}
	for _, sh := range old {
		for key, e := range sh.entries {
			all[key] = e
		}
		sh.entries = map[string]entry{}
	}
	b.shards = append(old, make([]*shard, len(old))...)
	for i := len(old); i < len(b.shards); i++ {
		b.shards[i] = &shard{entries: map[string]entry{}}
	}
	for key, e := range all {
		b.shardFor(key).entries[key] = e
	}
}

// merge takes over what another writer left in shard i (fresh, nil when it
// deleted the ConfigMap): its entries replace this store's, except for keys
// this store changed itself (ours, or pending again since).
func (b *bucket) merge(i int, sh *shard, fresh *corev1.ConfigMap, ours map[string]struct{}) {
	if i >= len(b.shards) || b.shards[i] != sh {
		return
	}
	mine := func(key string) bool {
		_, a := ours[key]
		_, p := b.pending[key]
		return a || p
	}
	theirs := decodeShard(fresh)
	for key := range sh.entries {
		if _, kept := theirs[key]; !kept && !mine(key) {
			b.del(key)
		}
	}
	for key, e := range theirs {
		if shardOf(key, len(b.shards)) == i && !mine(key) {
			b.set(key, e)
		}
	}
	sh.exists, sh.resourceVersion = false, ""
	if fresh != nil {
		sh.exists, sh.resourceVersion = true, fresh.ResourceVersion
	}
}

// load replaces the bucket's contents with what the ConfigMaps hold; cms[i]
// is shard i, nil when missing. Entries found in a shard they do not hash to
// (left over from an interrupted split) and expired entries are skipped.
func (b *bucket) load(cms []*corev1.ConfigMap, now time.Time) {
	b.shards = make([]*shard, len(cms))
	b.count, b.bytes = 0, 0
	for i, cm := range cms {
		b.shards[i] = &shard{entries: map[string]entry{}}
		if cm != nil {
			b.shards[i].exists, b.shards[i].resourceVersion = true, cm.ResourceVersion
		}
	}
	b.persistedShards = len(cms)
	for i, cm := range cms {
		for key, e := range decodeShard(cm) {
			if shardOf(key, len(cms)) == i && !e.expired(now) {
				b.set(key, e)
			}
		}
	}
}

// configMap renders shard i as the ConfigMap to write, dropping expired
// entries on the way.
func (b *bucket) configMap(namespace string, i int, now time.Time) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	cm.Name = shardName(b.name, i)
	cm.Namespace = namespace
	cm.ResourceVersion = b.shards[i].resourceVersion
	cm.Labels = map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, LabelBucket: b.name}
	if i == 0 {
		cm.Annotations = map[string]string{AnnotationShards: strconv.Itoa(len(b.shards))}
	}
	for key, e := range b.shards[i].entries {
		if e.expired(now) {
			b.del(key)
			continue
		}
		encodeEntry(cm, key, e)
	}
	return cm
}

func shardName(bucket string, i int) string {
	if i == 0 {
		return "teleop-" + bucket
	}
	return fmt.Sprintf("teleop-%s-%d", bucket, i)
}

// encodeEntry writes e into cm as "<expiry unix ms>|<value>": in Data when the
// value is UTF-8 (readable with kubectl), in BinaryData otherwise.
func encodeEntry(cm *corev1.ConfigMap, key string, e entry) {
	var expires int64
	if !e.expires.IsZero() {
		expires = e.expires.UnixMilli()
	}
	prefix := strconv.FormatInt(expires, 10) + "|"
	k := encodeKey(key)
	if utf8.Valid(e.value) {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[k] = prefix + string(e.value)
		return
	}
	if cm.BinaryData == nil {
		cm.BinaryData = map[string][]byte{}
	}
	cm.BinaryData[k] = append([]byte(prefix), e.value...)
}

// decodeShard returns the entries of cm, skipping any it cannot read (written
// by hand, say): they are logged by nobody and dropped on the next write.
func decodeShard(cm *corev1.ConfigMap) map[string]entry {
	out := map[string]entry{}
	if cm == nil {
		return out
	}
	add := func(k string, raw []byte) {
		key, ok := decodeKey(k)
		if !ok {
			return
		}
		i := bytes.IndexByte(raw, '|')
		if i < 0 {
			return
		}
		ms, err := strconv.ParseInt(string(raw[:i]), 10, 64)
		if err != nil {
			return
		}
		e := entry{value: raw[i+1:]}
		if ms != 0 {
			e.expires = time.UnixMilli(ms)
		}
		out[key] = e
	}
	for k, v := range cm.Data {
		add(k, []byte(v))
	}
	for k, v := range cm.BinaryData {
		add(k, v)
	}
	return out
}

// encodeKey makes key a valid ConfigMap data key: letters, digits and '-'
// stay, every other byte becomes _XX (hex).
func encodeKey(key string) string {
	var sb strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "_%02X", c)
	}
	return sb.String()
}

func decodeKey(k string) (string, bool) {
	var sb strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] != '_' {
			sb.WriteByte(k[i])
			continue
		}
		if i+2 >= len(k) {
			return "", false
		}
		n, err := strconv.ParseUint(k[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		sb.WriteByte(byte(n))
		i += 2
	}
	return sb.String(), true
}

func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if n := len(encodeKey(key)); n > maxDataKey {
		return fmt.Errorf("%w: %q encodes to %d characters, at most %d", ErrInvalidKey, key, n, maxDataKey)
	}
	return nil
}
