package conversations

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/access"
)

// maxNamespaceChecks bounds the permission checks one ns prompt makes.
const maxNamespaceChecks = 64

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
	text := fmt.Sprintf("This chat works in %s. Pick another namespace or send its name.", bold(c.Namespace()))
	if len(visible) == 0 {
		text = fmt.Sprintf("This chat works in %s. Send the name of another namespace.", bold(c.Namespace()))
	}
	return picker(text, visible, currentPage(c)), nil
}

// visibleNamespaces lists the cluster's namespaces (with the operator's
// rights) and keeps those the user may list TeleApps in, sorted. Without a
// Cluster client (a console without one) there are none to offer.
func visibleNamespaces(ctx context.Context, c *Conv) ([]string, error) {
	if c.e.cfg.Cluster == nil {
		return nil, nil
	}
	list, err := c.e.cfg.Cluster.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: maxNamespaceChecks})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var visible []string
	for _, ns := range list.Items {
		err := c.e.cfg.Authorizer.Check(ctx, c.Identity(), "list", ns.Name)
		var denied *access.DeniedError
		switch {
		case err == nil:
			visible = append(visible, ns.Name)
		case !errors.As(err, &denied):
			return nil, fmt.Errorf("authorize list in %s: %w", ns.Name, err)
		}
	}
	slices.Sort(visible)
	return visible, nil
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
	if c.e.cfg.Cluster != nil {
		if _, err := c.e.cfg.Cluster.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return "", Retry("There is no namespace %s.", bold(ns))
		} else if err != nil {
			return "", fmt.Errorf("get namespace %s: %w", ns, err)
		}
	}
	if err := c.e.cfg.Namespaces.Set(ctx, c.ChatID(), ns); err != nil {
		return "", err
	}
	c.Done("This chat now works in %s.", bold(ns))
	return "", nil
}
