package checkpoint_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/checkpoint"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

func TestSaveIsFencedByWhatTheWriterSaw(t *testing.T) {
	ctx := context.Background()
	c := cluster.Shared(t)
	ns := c.Namespace(t, "checkpoint-")
	client, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)

	leader := checkpoint.New(client, ns, "teleop-checkpoint")
	got, err := leader.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, got, "nothing saved yet")
	require.NoError(t, leader.Save(ctx, []byte("one")))
	require.NoError(t, leader.Save(ctx, []byte("two")))

	successor := checkpoint.New(client, ns, "teleop-checkpoint")
	got, err = successor.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got))
	require.NoError(t, successor.Save(ctx, []byte("three")))

	err = leader.Save(ctx, []byte("stale"))
	require.Error(t, err)
	assert.True(t, apierrors.IsConflict(err), "want a conflict, got %v", err)
	got, err = checkpoint.New(client, ns, "teleop-checkpoint").Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "three", string(got), "a deposed writer overwrote its successor")

	// Two writers that both saw no ConfigMap: only the first creates it.
	other := checkpoint.New(client, ns, "teleop-other")
	first := checkpoint.New(client, ns, "teleop-other")
	require.NoError(t, first.Save(ctx, []byte("first")))
	err = other.Save(ctx, []byte("second"))
	assert.True(t, apierrors.IsAlreadyExists(err), "want already-exists, got %v", err)
}
