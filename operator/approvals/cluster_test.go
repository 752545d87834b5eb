package approvals_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/approvals"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

func newRequests(t *testing.T) (*approvals.Requests, *apps.Client, string) {
	c := cluster.Shared(t)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	tele, err := versioned.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	recorder, stop := apps.NewEventRecorder(kube, "teleop-approvals-test")
	t.Cleanup(stop)
	ns := c.Namespace(t, "approvals-")
	client := apps.New(tele, recorder)
	_, err = client.Create(context.Background(), ns, "web", "nginx:1.27", 1, nil, apps.Audit{Actor: "test", Command: "create", RequestID: "c"})
	require.NoError(t, err)
	return approvals.New(tele, kube, recorder, nil), client, ns
}

func request(requestID string) approvals.Request {
	return approvals.Request{
		ID: approvals.NewID(), Operation: "delete", Requester: "telegram:1", Actor: "telegram:1 (@alice)",
		Command: "/delete web", RequestID: requestID, Chat: "-5", Expires: time.Now().Add(time.Minute),
	}
}

// TestClusterOneRequestAtATimeAndOneApproval: a redelivered request is the
// same request, another one waits its turn, and of many approvals racing on
// the real API server exactly one wins.
func TestClusterOneRequestAtATimeAndOneApproval(t *testing.T) {
	r, _, ns := newRequests(t)
	ctx := context.Background()

	first := request("telegram-update-1")
	got, opened, err := r.Open(ctx, ns, "web", first)
	require.NoError(t, err)
	assert.True(t, opened)
	again, opened, err := r.Open(ctx, ns, "web", request("telegram-update-1"))
	require.NoError(t, err)
	assert.False(t, opened, "a redelivered update opens nothing new")
	assert.Equal(t, got.ID, again.ID)
	busy, _, err := r.Open(ctx, ns, "web", request("telegram-update-2"))
	require.ErrorIs(t, err, approvals.ErrBusy)
	assert.Equal(t, first.ID, busy.ID)

	found, err := r.Find(ctx, first.ID)
	require.NoError(t, err)
	assert.Equal(t, ns, found.Namespace)
	assert.Equal(t, approvals.Pending, found.Request.State)
	required, err := r.Required(ctx, ns)
	require.NoError(t, err)
	assert.False(t, required, "the namespace is not labelled")

	const approvers = 8
	var wg sync.WaitGroup
	results := make(chan error, approvers)
	for range approvers {
		wg.Go(func() {
			_, err := r.Approve(ctx, ns, "web", first.ID, "telegram:2 (@bob)")
			results <- err
		})
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, approvals.ErrNotOpen):
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, won, "exactly one approval wins")
	_, err = r.Reject(ctx, ns, "web", first.ID, "telegram:3")
	require.ErrorIs(t, err, approvals.ErrNotOpen, "an approved request cannot be rejected")
	require.NoError(t, r.Close(ctx, ns, "web", first.ID, approvals.OutcomeApplied, ""))
	_, err = r.Find(ctx, first.ID)
	require.ErrorIs(t, err, approvals.ErrNotOpen)
	open, err := r.All(ctx)
	require.NoError(t, err)
	for _, o := range open {
		assert.NotEqual(t, ns, o.Namespace, "closed requests are not listed")
	}
}

func TestClusterExpiredRequest(t *testing.T) {
	r, _, ns := newRequests(t)
	ctx := context.Background()
	stale := request("telegram-update-1")
	stale.Expires = time.Now().Add(-time.Second)
	_, opened, err := r.Open(ctx, ns, "web", stale)
	require.NoError(t, err)
	require.True(t, opened)
	_, err = r.Approve(ctx, ns, "web", stale.ID, "telegram:2 (@bob)")
	require.ErrorIs(t, err, approvals.ErrExpired)
	_, err = r.Find(ctx, stale.ID)
	require.ErrorIs(t, err, approvals.ErrNotOpen, "an expired request is closed when found so")

	// A request nobody swept yet gives way to a new one.
	stale = request("telegram-update-2")
	stale.Expires = time.Now().Add(-time.Second)
	_, _, err = r.Open(ctx, ns, "web", stale)
	require.NoError(t, err)
	fresh := request("telegram-update-3")
	_, opened, err = r.Open(ctx, ns, "web", fresh)
	require.NoError(t, err)
	assert.True(t, opened)
	found, err := r.Find(ctx, fresh.ID)
	require.NoError(t, err)
	assert.Equal(t, fresh.ID, found.Request.ID)
}
