// Package runop runs the real operator beside a test, so the test sees
// Deployments, ReplicaSets, pods and their Events as teleop makes them.
package runop

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/test/cluster"
)

// Start runs an operator watching namespace of c until the test ends.
func Start(t testing.TB, c *cluster.Cluster, namespace string) {
	t.Helper()
	clients, err := operator.NewClients(c.RESTConfig(), operator.Options{})
	require.NoError(t, err)
	op, err := operator.New(clients, operator.Options{Namespace: namespace, Workers: 2})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
}
