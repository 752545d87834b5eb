package access

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// rbacGrant is one thing the fake API server allows: user may verb in namespace.
type rbacGrant struct{ user, verb, namespace string }

// fakeAuthorizingClient answers SubjectAccessReviews from grants, as an RBAC
// authorizer would, and records what was asked.
func fakeAuthorizingClient(grants ...rbacGrant) (*fake.Clientset, *[]authorizationv1.SubjectAccessReviewSpec) {
	client := fake.NewClientset()
	var asked []authorizationv1.SubjectAccessReviewSpec
	client.PrependReactor("create", "subjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview).DeepCopy()
		asked = append(asked, review.Spec)
		attrs := review.Spec.ResourceAttributes
		for _, g := range grants {
			if g.user == review.Spec.User && g.verb == attrs.Verb && g.namespace == attrs.Namespace &&
				attrs.Group == "teleop.io" && attrs.Resource == "teleapps" {
				review.Status.Allowed = true
			}
		}
		return true, review, nil
	})
	return client, &asked
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
				assert.Empty(t, *asked)
				return
			}
			require.Len(t, *asked, 1)
			assert.Equal(t, "telegram:1", (*asked)[0].User)
			assert.Equal(t, []string{"telegram:chat:-100", "telegram:users"}, (*asked)[0].Groups)
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
