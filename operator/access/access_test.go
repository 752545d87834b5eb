package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

// rbacGrant is one thing the fake API server allows: user may verb in namespace.
type rbacGrant struct{ user, verb, namespace string }

// askLog records the SubjectAccessReviews asked, from any goroutine.
type askLog struct {
	mu    sync.Mutex
	specs []authorizationv1.SubjectAccessReviewSpec
}

func (l *askLog) all() []authorizationv1.SubjectAccessReviewSpec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.specs)
}

// fakeAuthorizingClient answers SubjectAccessReviews from grants, as an RBAC
// authorizer would, and records what was asked.
func fakeAuthorizingClient(grants ...rbacGrant) (*fake.Clientset, *askLog) {
	client := fake.NewClientset()
	asked := &askLog{}
	client.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		asked.mu.Lock()
		asked.specs = append(asked.specs, review.Spec)
		asked.mu.Unlock()
		attrs := review.Spec.ResourceAttributes
		for _, g := range grants {
			if g.user == review.Spec.User && g.verb == attrs.Verb && g.namespace == attrs.Namespace &&
				attrs.Group == "teleop.io" && attrs.Resource == "teleapps" {
				review.Status.Allowed = true
			}
		}
		return true, review, nil
	})
	return client, asked
}

func TestCheck(t *testing.T) {
	alice := Identity{User: "telegram:1", Groups: []string{"telegram:chat:-100", "telegram:users"}}
	tests := []struct {
		name      string
		admins    []string
		grants    []rbacGrant
		verb, ns  string
		wantErr   string
		wantAsked bool
	}{
		{name: "granted", grants: []rbacGrant{{"telegram:1", "update", "web"}}, verb: "update", ns: "web", wantAsked: true},
		{name: "other namespace only", grants: []rbacGrant{{"telegram:1", "update", "db"}}, verb: "update", ns: "web",
			wantErr: "you may not update teleapps in namespace web: ask an admin for teleop-editor", wantAsked: true},
		{name: "read refused names viewer", verb: "list", ns: "default",
			wantErr: "you may not list teleapps in namespace default: ask an admin for teleop-viewer", wantAsked: true},
		{name: "delete refused names editor", grants: []rbacGrant{{"telegram:1", "get", "web"}}, verb: "delete", ns: "web",
			wantErr: "you may not delete teleapps in namespace web: ask an admin for teleop-editor", wantAsked: true},
		{name: "other user's grant does not count", grants: []rbacGrant{{"telegram:2", "get", "web"}}, verb: "get", ns: "web",
			wantErr: "you may not get teleapps in namespace web: ask an admin for teleop-viewer", wantAsked: true},
		{name: "admin allowed without asking", admins: []string{"telegram:1"}, verb: "delete", ns: "kube-system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, asked := fakeAuthorizingClient(tt.grants...)
			err := New(client, tt.admins).Check(context.Background(), alice, tt.verb, tt.ns)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				var denied *DeniedError
				require.ErrorAs(t, err, &denied)
				assert.EqualError(t, err, tt.wantErr)
			}
			if !tt.wantAsked {
				assert.Empty(t, asked.all())
				return
			}
			require.Len(t, asked.all(), 1)
			assert.Equal(t, "telegram:1", asked.all()[0].User)
			assert.Equal(t, []string{"telegram:chat:-100", "telegram:users"}, asked.all()[0].Groups)
		})
	}
}

func TestCheckAPIErrorIsNotAnAllow(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "subjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	err := New(client, nil).Check(context.Background(), Identity{User: "telegram:1"}, "get", "web")
	require.ErrorContains(t, err, "connection refused")
	var denied *DeniedError
	assert.False(t, errors.As(err, &denied))
}

func TestCheckRemembersAnswersBriefly(t *testing.T) {
	alice := Identity{User: "telegram:1", Groups: []string{"telegram:chat:-100", "telegram:users"}}
	aliceElsewhere := Identity{User: "telegram:1", Groups: []string{"telegram:chat:-200", "telegram:users"}}
	type check struct {
		after    time.Duration // since the previous check
		id       Identity
		verb, ns string
		allowed  bool
	}
	tests := []struct {
		name      string
		checks    []check
		wantAsked int
	}{
		{name: "an allow is remembered, and asked again after AllowedTTL", wantAsked: 2, checks: []check{
			{0, alice, "get", "web", true}, {RefreshAfter - time.Millisecond, alice, "get", "web", true}, {AllowedTTL, alice, "get", "web", true},
		}},
		{name: "a denial is remembered for DeniedTTL", wantAsked: 2, checks: []check{
			{0, alice, "get", "db", false}, {DeniedTTL - time.Millisecond, alice, "get", "db", false}, {2 * time.Millisecond, alice, "get", "db", false},
		}},
		{name: "another verb, namespace or chat is another question", wantAsked: 4, checks: []check{
			{0, alice, "get", "web", true}, {0, alice, "delete", "web", false}, {0, alice, "get", "db", false}, {0, aliceElsewhere, "get", "web", true},
		}},
		{name: "group order does not matter", wantAsked: 1, checks: []check{
			{0, alice, "get", "web", true}, {0, Identity{User: alice.User, Groups: []string{"telegram:users", "telegram:chat:-100"}}, "get", "web", true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, asked := fakeAuthorizingClient(rbacGrant{"telegram:1", "get", "web"})
			clock := testingclock.NewFakeClock(time.Unix(1e9, 0))
			a := NewWithClock(client, nil, clock)
			for i, c := range tt.checks {
				clock.Step(c.after)
				err := a.Check(context.Background(), c.id, c.verb, c.ns)
				if c.allowed {
					assert.NoError(t, err, "check %d", i)
				} else {
					var denied *DeniedError
					assert.ErrorAs(t, err, &denied, "check %d", i)
				}
			}
			assert.Len(t, asked.all(), tt.wantAsked)
		})
	}
}

// An allow in use is asked again in the background once it is RefreshAfter
// old: a user who keeps working never waits for the API server, and the
// answer served is never older than AllowedTTL.
func TestAllowInUseIsRefreshedInTheBackground(t *testing.T) {
	client := fake.NewClientset()
	entered, release := make(chan struct{}, 10), make(chan struct{}, 10)
	asks := 0
	client.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		asks++ // asks are one at a time here: the first in the check, then one refresh at a time
		if asks > 1 {
			entered <- struct{}{}
			<-release
		}
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		review.Status.Allowed = true
		return true, review, nil
	})
	t.Cleanup(func() { close(release) })
	clock := testingclock.NewFakeClock(time.Unix(1e9, 0))
	a := NewWithClock(client, nil, clock)
	alice := Identity{User: "telegram:1"}
	// checkAtOnce fails when the check waits for an ask (they are held).
	checkAtOnce := func(what string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- a.Check(context.Background(), alice, "get", "web") }()
		select {
		case err := <-done:
			require.NoError(t, err, what)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s waited for the API server", what)
		}
	}

	require.NoError(t, a.Check(context.Background(), alice, "get", "web"))
	clock.Step(RefreshAfter)
	checkAtOnce("a check due for refresh")
	select {
	case <-entered: // the refresh asks
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh was asked")
	}
	clock.Step(AllowedTTL - RefreshAfter - time.Millisecond)
	checkAtOnce("a check while the refresh is asking")
	release <- struct{}{}
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.refreshing) == 0
	}, 5*time.Second, time.Millisecond)
	clock.Step(2 * time.Millisecond) // the first answer has expired, the refreshed one not
	checkAtOnce("a check after the first answer expired")
}

func TestCheckDoesNotRememberErrors(t *testing.T) {
	client := fake.NewClientset()
	calls := 0
	client.PrependReactor("create", "subjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		return true, nil, errors.New("connection refused")
	})
	a := New(client, nil)
	for range 3 {
		require.Error(t, a.Check(context.Background(), Identity{User: "telegram:1"}, "get", "web"))
	}
	assert.Equal(t, 3, calls)
}

func TestAnswerCacheIsBounded(t *testing.T) {
	client, asked := fakeAuthorizingClient()
	// A frozen clock: on a loaded machine, answers could expire on the real
	// one before the loop ends and hide an unbounded cache.
	a := NewWithClock(client, nil, testingclock.NewFakeClock(time.Unix(1e9, 0)))
	for i := range CacheSize + 10 {
		_ = a.Check(context.Background(), Identity{User: fmt.Sprintf("telegram:%d", i)}, "get", "web")
	}
	assert.Len(t, a.answers.Keys(), CacheSize)
	assert.Len(t, asked.all(), CacheSize+10)
}

func TestAllowedAsksAboutThePermissionAndNamesItsRole(t *testing.T) {
	alice := Identity{User: "telegram:1", Groups: []string{"telegram:users"}}
	tests := []struct {
		name       string
		permission Permission
		wantAsked  authorizationv1.ResourceAttributes
		wantErr    string
	}{
		{name: "pod logs", permission: GetPodLogs,
			wantAsked: authorizationv1.ResourceAttributes{Namespace: "web", Verb: "get", Resource: "pods", Subresource: "log"},
			wantErr:   "you may not get pods/log in namespace web: ask an admin for teleop-log-reader"},
		{name: "events", permission: ListEvents,
			wantAsked: authorizationv1.ResourceAttributes{Namespace: "web", Verb: "list", Resource: "events"},
			wantErr:   "you may not list events in namespace web: ask an admin for teleop-viewer"},
		{name: "approve", permission: OnTeleApps(VerbApprove),
			wantAsked: authorizationv1.ResourceAttributes{Namespace: "web", Verb: "approve", Group: "teleop.io", Resource: "teleapps"},
			wantErr:   "you may not approve teleapps in namespace web: ask an admin for teleop-approver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, asked := fakeAuthorizingClient()
			err := New(client, nil).Allowed(context.Background(), alice, tt.permission, "web")
			var denied *DeniedError
			require.ErrorAs(t, err, &denied)
			assert.EqualError(t, err, tt.wantErr)
			require.Len(t, asked.all(), 1)
			assert.Equal(t, tt.wantAsked, *asked.all()[0].ResourceAttributes)
		})
	}
}
