// Package checkpoint keeps one small value in a ConfigMap of teleop's
// namespace, fenced by the ConfigMap's resourceVersion: a writer that has
// not seen the latest value (a deposed leader) cannot overwrite it. The chat
// transport keeps its update checkpoint here; the package knows nothing of
// what the value means.
package checkpoint

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// DataKey is the ConfigMap key that holds the value.
const DataKey = "state"

// ConfigMap is one fenced value in ConfigMap namespace/name.
type ConfigMap struct {
	client          kubernetes.Interface
	namespace, name string

	mu sync.Mutex
	// resourceVersion is the version this writer saw last; "" when the
	// ConfigMap did not exist then.
	resourceVersion string
}

// New returns the value kept in ConfigMap namespace/name.
func New(client kubernetes.Interface, namespace, name string) *ConfigMap {
	return &ConfigMap{client: client, namespace: namespace, name: name}
}

// Load returns the value, nil when the ConfigMap does not exist yet, and
// remembers its version for the next Save.
func (c *ConfigMap) Load(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cm, err := c.client.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.resourceVersion = ""
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", c.namespace, c.name, err)
	}
	c.resourceVersion = cm.ResourceVersion
	if v, ok := cm.Data[DataKey]; ok {
		return []byte(v), nil
	}
	return nil, nil
}

// Save replaces the value if the ConfigMap is still at the version this
// writer saw last (Load or Save); otherwise it fails with a conflict (or
// already-exists) error and changes nothing.
func (c *ConfigMap) Save(ctx context.Context, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c.namespace, Name: c.name, ResourceVersion: c.resourceVersion,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
		},
		Data: map[string]string{DataKey: string(data)},
	}
	var (
		saved *corev1.ConfigMap
		err   error
	)
	if c.resourceVersion == "" {
		saved, err = c.client.CoreV1().ConfigMaps(c.namespace).Create(ctx, cm, metav1.CreateOptions{})
	} else {
		saved, err = c.client.CoreV1().ConfigMaps(c.namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("save ConfigMap %s/%s: %w", c.namespace, c.name, err)
	}
	c.resourceVersion = saved.ResourceVersion
	return nil
}
