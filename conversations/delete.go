package conversations

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// deleteFlow: pick the app → confirm with its name spelled out. Started with
// the preset "name" (the one-shot /delete web) it asks Yes/No at once.
func deleteFlow() *Flow {
	return &Flow{
		Name: "delete", Command: "/delete",
		Begin: func(c *Conv) string {
			if c.Get("name") != "" {
				return "confirm"
			}
			return "pick"
		},
		States: map[string]*State{
			"pick": pickApp("delete", "Which app in %s should I delete?", "confirm"),
			"confirm": {
				Prompt: func(ctx context.Context, c *Conv) (Prompt, error) {
					if err := c.Allow(ctx, "delete"); err != nil {
						return Prompt{}, err
					}
					name := c.Get("name")
					return Prompt{
						Text:    fmt.Sprintf("Delete %s in %s, with its Deployment and pods?", bold(name), bold(c.Namespace())),
						Buttons: [][]Choice{{{Label: "🗑 Yes, delete " + name, Value: "yes"}, {Label: "No, keep it", Value: "no"}}},
					}, nil
				},
				Accept: confirmDelete,
			},
		},
	}
}

func confirmDelete(ctx context.Context, c *Conv, answer string) (string, error) {
	name, ns := c.Get("name"), c.Namespace()
	if answer != "yes" {
		c.Done("Kept %s.", bold(name))
		return "", nil
	}
	if err := c.Allow(ctx, "delete"); err != nil {
		return "", err
	}
	switch err := c.Apps().Delete(ctx, ns, name, c.Audit()); {
	case apierrors.IsNotFound(err):
		c.Done("%s was already gone from %s.", bold(name), bold(ns))
	case err != nil:
		return "", clusterRefusal(err)
	default:
		c.Done("🗑 Deleted %s from %s.", bold(name), bold(ns))
	}
	return "", nil
}
