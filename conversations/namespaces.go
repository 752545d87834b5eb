package conversations

import (
	"context"
	"fmt"
	"strconv"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// ChatsBucket is the store bucket holding each chat's namespace.
const ChatsBucket = "chats"

// DefaultNamespace is where a chat works until /ns says otherwise.
const DefaultNamespace = "default"

// Namespaces keeps each chat's namespace in the store.
type Namespaces struct {
	store Store
}

// NewNamespaces returns per-chat namespaces kept in store.
func NewNamespaces(store Store) *Namespaces { return &Namespaces{store: store} }

// Get returns the chat's namespace, DefaultNamespace until one is set.
func (n *Namespaces) Get(ctx context.Context, chatID int64) (string, error) {
	v, found, err := n.store.Get(ctx, ChatsBucket, strconv.FormatInt(chatID, 10))
	if err != nil {
		return "", fmt.Errorf("namespace of chat %d: %w", chatID, err)
	}
	if !found {
		return DefaultNamespace, nil
	}
	return string(v), nil
}

// Set makes namespace the chat's namespace, durably: the reply that
// confirms it follows only once it is written.
func (n *Namespaces) Set(ctx context.Context, chatID int64, namespace string) error {
	if err := v1alpha1.ValidateName(namespace); err != nil {
		return fmt.Errorf("set namespace of chat %d: %w", chatID, err)
	}
	if err := n.store.Put(ctx, ChatsBucket, strconv.FormatInt(chatID, 10), []byte(namespace), 0); err != nil {
		return fmt.Errorf("set namespace of chat %d: %w", chatID, err)
	}
	if err := n.store.Flush(ctx); err != nil {
		return fmt.Errorf("set namespace of chat %d: %w", chatID, err)
	}
	return nil
}
