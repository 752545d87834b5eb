package chats

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// The "chats" bucket of the key/value store teleop kept before TeleChats:
// ConfigMap teleop-chats (and teleop-chats-1.. when it was split, their count
// in shard 0's annotation teleop.io/shards), each entry a chat ID mapped to
// "<expiry unix ms, 0 for never>|<namespace>".
const (
	legacyConfigMap    = "teleop-chats"
	legacyShards       = "teleop.io/shards"
	AnnotationImported = "teleop.io/imported-to-telechats"
)

// Import turns the chats bucket of the old store into TeleChats, once: it
// then marks teleop-chats with AnnotationImported, and a later call does
// nothing. A chat that has a TeleChat already keeps it. It returns how many
// TeleChats it created.
func (c *Chats) Import(ctx context.Context, configMaps corev1client.ConfigMapInterface, log *slog.Logger) (int, error) {
	first, err := configMaps.Get(ctx, legacyConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && first.Annotations[AnnotationImported] != "" {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", legacyConfigMap, err)
	}
	shards, _ := strconv.Atoi(first.Annotations[legacyShards])
	shards = max(shards, 1)
	created := 0
	for i := range shards {
		shard := first
		if i > 0 {
			if shard, err = configMaps.Get(ctx, fmt.Sprintf("%s-%d", legacyConfigMap, i), metav1.GetOptions{}); err != nil {
				return created, fmt.Errorf("read shard %d of %s: %w", i, legacyConfigMap, err)
			}
		}
		for key, value := range shard.Data {
			chatID, namespace, ok := legacyEntry(key, value, i, shards)
			if !ok {
				log.Warn("skipped an entry of the old chats store", "configmap", shard.Name, "key", key)
				continue
			}
			chat, err := c.client.TeleopV1alpha1().TeleChats(c.namespace).Create(ctx, c.newChat(chatID, namespace), metav1.CreateOptions{FieldManager: "teleop-import"})
			switch {
			case err == nil:
				c.cache.Mutation(chat)
				created++
			case !apierrors.IsAlreadyExists(err):
				return created, fmt.Errorf("import chat %d: %w", chatID, err)
			}
		}
	}
	metav1.SetMetaDataAnnotation(&first.ObjectMeta, AnnotationImported, time.Now().UTC().Format(time.RFC3339))
	if _, err := configMaps.Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		return created, fmt.Errorf("mark %s imported: %w", legacyConfigMap, err)
	}
	return created, nil
}

// legacyEntry reads one entry of shard i of n; entries left in a shard they
// do not hash to (an interrupted split) and expired ones were never live.
func legacyEntry(key, value string, i, n int) (chatID int64, namespace string, ok bool) {
	expiry, namespace, ok := strings.Cut(value, "|")
	chatID, err := strconv.ParseInt(key, 10, 64)
	if !ok || err != nil || chatID == 0 || v1alpha1.ValidateName(namespace) != nil || expiry != "0" {
		return 0, "", false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return chatID, namespace, int(h.Sum32()%uint32(n)) == i
}
