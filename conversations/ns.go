package conversations

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/chats"
)

// nsFlow: pick the chat's namespace among those the user may list TeleApps
// in, or type one.
func nsFlow() *Flow {
	return &Flow{
		Name: "ns", Command: "/ns",
		Begin: func(*Conv) string { return "pick" },
		States: map[string]*State{
			"pick": {
				Prompt:  nsPrompt,
				Pattern: oneWord, Hint: hintName,
				Accept: nsChoose,
			},
		},
	}
}

func nsPrompt(ctx context.Context, c *Conv) (Prompt, error) {
	visible, err := visibleNamespaces(ctx, c)
	if err != nil {
		return Prompt{}, err
	}
	if allowed := c.e.cfg.Namespaces.Allowed(c.ChatID()); allowed != nil {
		visible = slices.DeleteFunc(visible, func(ns string) bool { return !slices.Contains(allowed, ns) })
	}
	text := fmt.Sprintf("This chat works in %s. Pick another namespace or send its name.", bold(c.Namespace()))
	if len(visible) == 0 {
		text = fmt.Sprintf("This chat works in %s. Send the name of another namespace.", bold(c.Namespace()))
	}
	return picker(text, visible, currentPage(c)), nil
}

// visibleNamespaces returns, sorted, the namespaces (read from the
// informer cache, never listed live) where the user may list TeleApps: all
// of them after one check when the user may list TeleApps everywhere, else
// those the per-namespace checks allow (the authorizer remembers each answer
// for a few seconds). A user who may read nowhere gets an End naming the role
// to ask for, before any conversation is stored. Without a namespace cache
// (a console without a cluster) there are none to offer.
func visibleNamespaces(ctx context.Context, c *Conv) ([]string, error) {
	if c.e.cfg.ClusterNamespaces == nil {
		return nil, nil
	}
	cached, err := c.e.cfg.ClusterNamespaces.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list cached namespaces: %w", err)
	}
	all := make([]string, 0, len(cached))
	for _, ns := range cached {
		all = append(all, ns.Name)
	}
	slices.Sort(all)
	everywhere, err := mayList(ctx, c, metav1.NamespaceAll)
	if err != nil {
		return nil, err
	}
	if everywhere {
		return all, nil
	}
	var visible []string
	for _, ns := range all {
		allowed, err := mayList(ctx, c, ns)
		if err != nil {
			return nil, err
		}
		if allowed {
			visible = append(visible, ns)
		}
	}
	if len(visible) == 0 {
		return nil, End("⛔ You may not list teleapps in any namespace: ask an admin for %s.", access.ViewerRole)
	}
	return visible, nil
}

// mayList reports whether the user may list TeleApps in namespace (all of
// them for metav1.NamespaceAll).
func mayList(ctx context.Context, c *Conv, namespace string) (bool, error) {
	err := c.e.cfg.Authorizer.Allowed(ctx, c.Identity(), access.OnTeleApps("list"), namespace)
	var denied *access.DeniedError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &denied):
		return false, nil
	default:
		return false, fmt.Errorf("authorize list in %q: %w", namespace, err)
	}
}

func nsChoose(ctx context.Context, c *Conv, answer string) (string, error) {
	if turnedPage(c, answer) {
		return "pick", nil
	}
	ns, err := nameAnswer(answer)
	if err != nil {
		return "", err
	}
	if err := c.AllowIn(ctx, "list", ns); err != nil {
		return "", Retry("%s", err.Error())
	}
	if c.e.cfg.ClusterNamespaces != nil {
		if _, err := c.e.cfg.ClusterNamespaces.Get(ns); apierrors.IsNotFound(err) {
			return "", Retry("There is no namespace %s.", bold(ns))
		} else if err != nil {
			return "", fmt.Errorf("get namespace %s: %w", ns, err)
		}
	}
	var notAllowed *chats.NotAllowedError
	if err := c.e.cfg.Namespaces.Set(ctx, c.ChatID(), ns); errors.As(err, &notAllowed) {
		return "", Retry("%s.", esc(capitalise(notAllowed.Error())))
	} else if err != nil {
		return "", err
	}
	c.Done("This chat now works in %s.", bold(ns))
	return "", nil
}
