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
	"sync"
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
	ViewerRole    = "teleop-viewer"
	EditorRole    = "teleop-editor"
	ApproverRole  = "teleop-approver"
	LogReaderRole = "teleop-log-reader"
)

// VerbApprove is the custom verb on TeleApps that lets a user approve another
// user's change in a namespace that requires two people.
const VerbApprove = "approve"

// Permission is a verb on a resource (with an optional subresource) of an
// API group, as a SubjectAccessReview asks about it.
type Permission struct {
	Verb, Group, Resource, Subresource string
}

// OnTeleApps is verb on TeleApps.
func OnTeleApps(verb string) Permission {
	return Permission{Verb: verb, Group: v1alpha1.GroupName, Resource: Resource}
}

// The reads of the chat's /events and /logs, outside the TeleApp API.
var (
	ListEvents = Permission{Verb: "list", Resource: "events"}
	GetPodLogs = Permission{Verb: "get", Resource: "pods", Subresource: "log"}
)

// resource is how a refusal names the resource: "teleapps", "pods/log".
func (p Permission) resource() string {
	if p.Subresource == "" {
		return p.Resource
	}
	return p.Resource + "/" + p.Subresource
}

// role names the shipped ClusterRole that grants p.
func (p Permission) role() string {
	switch {
	case p == GetPodLogs:
		return LogReaderRole
	case p == ListEvents:
		return ViewerRole
	case p.Verb == VerbApprove:
		return ApproverRole
	case p.Verb == "get", p.Verb == "list", p.Verb == "watch":
		return ViewerRole
	default:
		return EditorRole
	}
}

// Identity is the Kubernetes user a chat user acts as.
type Identity struct {
	User   string
	Groups []string
}

// DeniedError says that a user may not do a verb, and which role would allow it.
type DeniedError struct {
	User, Verb, Resource, Namespace string
	// Role is the shipped ClusterRole that would allow it.
	Role string
	// Reason is the authorizer's own explanation, often empty for RBAC denials.
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("you may not %s %s in namespace %s: ask an admin for %s", e.Verb, e.Resource, e.Namespace, e.Role)
}

// How long the API server's answers are remembered, and how many. A grant
// therefore reaches the chat within DeniedTTL, a revocation within
// AllowedTTL; in between, a user who repeats a command (or a flood of them)
// costs no request at all. An allow still in use after RefreshAfter is asked
// again in the background, so that a user who keeps working never waits for
// a SubjectAccessReview, and no answer served is older than AllowedTTL.
const (
	AllowedTTL   = 5 * time.Second
	RefreshAfter = AllowedTTL / 2
	DeniedTTL    = 2 * time.Second
	CacheSize    = 4096
)

// refreshTimeout bounds one background refresh of an answer.
const refreshTimeout = 10 * time.Second

// Authorizer checks chat users' permissions on TeleApps. It remembers the
// API server's answers briefly (see AllowedTTL), never its errors.
type Authorizer struct {
	client  kubernetes.Interface
	admins  []string
	clock   cache.Clock
	answers *cache.LRUExpireCache

	mu sync.Mutex
	// refreshing holds the keys being asked again in the background.
	refreshing map[string]bool
}

// answer is what the API server said, and when it was asked.
type answer struct {
	denied *DeniedError
	asked  time.Time
}

// New returns an Authorizer asking client's API server; admins are user names
// (e.g. "telegram:1") allowed everything without asking.
func New(client kubernetes.Interface, admins []string) *Authorizer {
	return NewWithClock(client, admins, clock.RealClock{})
}

// NewWithClock is New with the clock that expires remembered answers.
func NewWithClock(client kubernetes.Interface, admins []string, c cache.Clock) *Authorizer {
	return &Authorizer{client: client, admins: slices.Clone(admins), clock: c,
		answers: cache.NewLRUExpireCacheWithClock(CacheSize, c), refreshing: map[string]bool{}}
}

// answerKey is what an answer depends on: who (user and groups), what
// permission, where.
func answerKey(id Identity, p Permission, namespace string) string {
	groups := slices.Clone(id.Groups)
	slices.Sort(groups)
	return strings.Join([]string{id.User, strings.Join(groups, ","), p.Verb, p.Group, p.resource(), namespace}, "\x00")
}

// Check returns nil when id may do verb on TeleApps in namespace, a
// *DeniedError when it may not, and another error when the API server could
// not be asked (which callers must treat as a refusal too).
func (a *Authorizer) Check(ctx context.Context, id Identity, verb, namespace string) error {
	return a.Allowed(ctx, id, OnTeleApps(verb), namespace)
}

// Allowed is Check for any permission in namespace.
func (a *Authorizer) Allowed(ctx context.Context, id Identity, p Permission, namespace string) error {
	if slices.Contains(a.admins, id.User) {
		return nil
	}
	key := answerKey(id, p, namespace)
	if v, ok := a.answers.Get(key); ok {
		known := v.(answer)
		if known.denied != nil {
			return known.denied
		}
		if a.clock.Now().Sub(known.asked) >= RefreshAfter {
			a.refresh(key, id, p, namespace)
		}
		return nil
	}
	return a.askAndRemember(ctx, key, id, p, namespace)
}

// askAndRemember asks the API server and remembers its answer.
func (a *Authorizer) askAndRemember(ctx context.Context, key string, id Identity, p Permission, namespace string) error {
	asked := a.clock.Now()
	err := a.ask(ctx, id, p, namespace)
	switch denied := (*DeniedError)(nil); {
	case err == nil:
		a.answers.Add(key, answer{asked: asked}, AllowedTTL-a.clock.Now().Sub(asked))
	case errors.As(err, &denied):
		a.answers.Add(key, answer{denied: denied, asked: asked}, DeniedTTL-a.clock.Now().Sub(asked))
	}
	return err
}

// refresh asks again about an allow in use, in the background, once at a
// time per key.
func (a *Authorizer) refresh(key string, id Identity, p Permission, namespace string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refreshing[key] {
		return
	}
	a.refreshing[key] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		defer cancel()
		_ = a.askAndRemember(ctx, key, id, p, namespace) // an error: the old answer expires
		a.mu.Lock()
		delete(a.refreshing, key)
		a.mu.Unlock()
	}()
}

// ask sends one SubjectAccessReview.
func (a *Authorizer) ask(ctx context.Context, id Identity, p Permission, namespace string) error {
	review := &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   id.User,
			Groups: slices.Clone(id.Groups),
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace:   namespace,
				Verb:        p.Verb,
				Group:       p.Group,
				Resource:    p.Resource,
				Subresource: p.Subresource,
			},
		},
	}
	answer, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("ask whether %s may %s %s in %s: %w", id.User, p.Verb, p.resource(), namespace, err)
	}
	if !answer.Status.Allowed || answer.Status.Denied {
		return &DeniedError{User: id.User, Verb: p.Verb, Resource: p.resource(), Namespace: namespace, Role: p.role(), Reason: answer.Status.Reason}
	}
	return nil
}
