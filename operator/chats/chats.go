// Package chats is the chat side's door to TeleChats: the namespace a chat
// works in, the namespaces it may choose, and whether it hears notices. It
// reads through the TeleChat informer of teleop's own namespace and writes
// through the API server, so kubectl and GitOps edit the same objects.
package chats

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/generated/informers/externalversions"
)

// DefaultNamespace is where a chat without a TeleChat works.
const DefaultNamespace = "default"

// NotAllowedError refuses a namespace outside the chat's spec.allowedNamespaces.
type NotAllowedError struct {
	Namespace string
	Allowed   []string
}

func (e *NotAllowedError) Error() string {
	return fmt.Sprintf("this chat may not work in %s, only in %s", e.Namespace, strings.Join(e.Allowed, ", "))
}

// Chats reads and writes the TeleChats of one namespace.
type Chats struct {
	client    versioned.Interface
	namespace string
	// cache is the informer's store, overlaid with this process's own writes
	// until the informer has them: the command after /ns reads what /ns wrote.
	cache cache.MutationCache
}

// Start returns Chats keeping TeleChats in namespace (teleop's
// --namespace), over an informer of that namespace of its own, started and
// synced; the informer runs until ctx ends.
func Start(ctx context.Context, client versioned.Interface, namespace string) (*Chats, error) {
	// An informer retries a failing list forever; say at once what is wrong.
	if _, err := client.TeleopV1alpha1().TeleChats(namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return nil, fmt.Errorf("list TeleChats in %s (is the CRD of deploy/crds installed, and may teleop list them?): %w", namespace, err)
	}
	factory := externalversions.NewSharedInformerFactoryWithOptions(client, 0, externalversions.WithNamespace(namespace))
	informer := factory.Teleop().V1alpha1().TeleChats().Informer()
	c := &Chats{
		client:    client,
		namespace: namespace,
		cache:     cache.NewIntegerResourceVersionMutationCache(klog.Background(), informer.GetStore(), informer.GetIndexer(), 10*time.Second, true),
	}
	factory.Start(ctx.Done())
	for _, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return nil, fmt.Errorf("sync the TeleChats of %s: %w", namespace, ctx.Err())
		}
	}
	return c, nil
}

func (c *Chats) get(chatID int64) *v1alpha1.TeleChat {
	obj, found, err := c.cache.GetByKey(c.namespace + "/" + v1alpha1.TeleChatName(chatID))
	if err != nil || !found {
		return nil // the informer's store returns no errors
	}
	return obj.(*v1alpha1.TeleChat)
}

// Get returns the namespace chatID works in; DefaultNamespace until a
// TeleChat says otherwise.
func (c *Chats) Get(_ context.Context, chatID int64) (string, error) {
	if chat := c.get(chatID); chat != nil && chat.Spec.Namespace != "" {
		return chat.Spec.Namespace, nil
	}
	return DefaultNamespace, nil
}

// Allowed returns the namespaces /ns may choose for chatID; nil when any.
func (c *Chats) Allowed(chatID int64) []string {
	if chat := c.get(chatID); chat != nil {
		return chat.Spec.AllowedNamespaces
	}
	return nil
}

// Muted reports whether the chat's TeleChat asks for no notices.
func (c *Chats) Muted(chatID int64) bool {
	chat := c.get(chatID)
	return chat != nil && chat.Spec.Mute
}

// Set makes namespace the one chatID works in, creating its TeleChat if
// needed. A namespace outside spec.allowedNamespaces is refused with a
// *NotAllowedError and nothing is written. The caller checked the user's
// permission there.
func (c *Chats) Set(ctx context.Context, chatID int64, namespace string) error {
	if err := v1alpha1.ValidateName(namespace); err != nil {
		return fmt.Errorf("set namespace of chat %d: %w", chatID, err)
	}
	chats := c.client.TeleopV1alpha1().TeleChats(c.namespace)
	name := v1alpha1.TeleChatName(chatID)
	conflict := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(retry.DefaultRetry, conflict, func() error {
		chat, err := chats.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			chat, err = chats.Create(ctx, c.newChat(chatID, namespace), metav1.CreateOptions{FieldManager: "teleop-ns"})
		} else if err == nil {
			if allowed := chat.Spec.AllowedNamespaces; allowed != nil && !slices.Contains(allowed, namespace) {
				return &NotAllowedError{Namespace: namespace, Allowed: allowed}
			}
			chat.Spec.Namespace = namespace
			chat, err = chats.Update(ctx, chat, metav1.UpdateOptions{FieldManager: "teleop-ns"})
		}
		if err != nil {
			return err
		}
		c.cache.Mutation(chat)
		return nil
	})
	if err != nil {
		return fmt.Errorf("set namespace of chat %d: %w", chatID, err)
	}
	return nil
}

func (c *Chats) newChat(chatID int64, namespace string) *v1alpha1.TeleChat {
	return &v1alpha1.TeleChat{
		ObjectMeta: metav1.ObjectMeta{
			Name: v1alpha1.TeleChatName(chatID), Namespace: c.namespace,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		},
		Spec: v1alpha1.TeleChatSpec{ChatID: strconv.FormatInt(chatID, 10), Namespace: namespace},
	}
}

// SkipMuted passes on to n the notices of every chat but the muted ones,
// whose notices count as delivered.
func (c *Chats) SkipMuted(n announce.Notifier) announce.Notifier {
	return announce.NotifierFunc(func(ctx context.Context, chatID string, notice announce.Notice) error {
		if id, err := strconv.ParseInt(chatID, 10, 64); err == nil && c.Muted(id) {
			return nil
		}
		return n.Notify(ctx, chatID, notice)
	})
}
