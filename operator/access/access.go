// Package access decides whether a chat user may act on TeleApps, by asking
// the API server with a SubjectAccessReview. Permissions are therefore plain
// Kubernetes RBAC: a cluster admin grants them with a RoleBinding.
package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// Resource is the resource every check is about.
const Resource = "teleapps"

// The ClusterRoles shipped in deploy/rbac/chat-roles.yaml; a refusal names
// the one to ask for.
const (
	ViewerRole = "teleop-viewer"
	EditorRole = "teleop-editor"
)

// Identity is the Kubernetes user a chat user acts as.
type Identity struct {
	User   string
	Groups []string
}

// DeniedError says that a user may not do a verb, and which role would allow it.
type DeniedError struct {
	User, Verb, Resource, Namespace string
	// Reason is the authorizer's own explanation, often empty for RBAC denials.
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("you may not %s %s in namespace %s: ask an admin for %s", e.Verb, e.Resource, e.Namespace, RoleFor(e.Verb))
}

// RoleFor names the shipped ClusterRole that grants verb on TeleApps.
func RoleFor(verb string) string {
	switch verb {
	case "get", "list", "watch":
		return ViewerRole
	default:
		return EditorRole
	}
}

// How long the API server's answers are remembered, and how many. A grant
// therefore reaches the chat within DeniedTTL, a revocation within
// AllowedTTL; in between, a user who repeats a command (or a flood of them)
// costs no request at all.
const (
	AllowedTTL = 5 * time.Second
	DeniedTTL  = 2 * time.Second
	CacheSize  = 4096
)

// Authorizer checks chat users' permissions on TeleApps. It remembers the
// API server's answers briefly (see AllowedTTL), never its errors.
type Authorizer struct {
	client  kubernetes.Interface
	admins  []string
	answers *cache.LRUExpireCache
}

// New returns an Authorizer asking client's API server; admins are user names
// (e.g. "telegram:1") allowed everything without asking.
func New(client kubernetes.Interface, admins []string) *Authorizer {
	return NewWithClock(client, admins, clock.RealClock{})
}

// NewWithClock is New with the clock that expires remembered answers.
func NewWithClock(client kubernetes.Interface, admins []string, c cache.Clock) *Authorizer {
	return &Authorizer{client: client, admins: slices.Clone(admins), answers: cache.NewLRUExpireCacheWithClock(CacheSize, c)}
}

// answerKey is what an answer depends on: who (user and groups), what
// verb, where.
func answerKey(id Identity, verb, namespace string) string {
	groups := slices.Clone(id.Groups)
	slices.Sort(groups)
	return strings.Join([]string{id.User, strings.Join(groups, ","), verb, Resource, namespace}, "\x00")
}

// Check returns nil when id may do verb on TeleApps in namespace, a
// *DeniedError when it may not, and another error when the API server could
// not be asked (which callers must treat as a refusal too).
func (a *Authorizer) Check(ctx context.Context, id Identity, verb, namespace string) error {
	if slices.Contains(a.admins, id.User) {
		return nil
	}
	key := answerKey(id, verb, namespace)
	if answer, ok := a.answers.Get(key); ok {
		if answer == nil {
			return nil
		}
		return answer.(*DeniedError)
	}
	err := a.ask(ctx, id, verb, namespace)
	switch denied := (*DeniedError)(nil); {
	case err == nil:
		a.answers.Add(key, nil, AllowedTTL)
	case errors.As(err, &denied):
		a.answers.Add(key, denied, DeniedTTL)
	}
	return err
}

// ask sends one SubjectAccessReview.
func (a *Authorizer) ask(ctx context.Context, id Identity, verb, namespace string) error {
	review := &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   id.User,
			Groups: slices.Clone(id.Groups),
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: namespace,
				Verb:      verb,
				Group:     v1alpha1.GroupName,
				Resource:  Resource,
			},
		},
	}
	answer, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("ask whether %s may %s %s in %s: %w", id.User, verb, Resource, namespace, err)
	}
	if !answer.Status.Allowed || answer.Status.Denied {
		return &DeniedError{User: id.User, Verb: verb, Resource: Resource, Namespace: namespace, Reason: answer.Status.Reason}
	}
	return nil
}
