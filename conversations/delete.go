package conversations

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// deleteFlow: pick the app → confirm with its name spelled out. Started with
// the preset "name" (the one-shot /delete web) it asks Yes/No at once.
func deleteFlow() *Flow {
	return appFlow{
		name: "delete", question: "Which app in %s should I delete?", need: onTeleApps("delete"),
		nextName: "confirm", next: &State{
			Prompt: func(_ context.Context, c *Conv) (Prompt, error) {
				name := c.Get("name")
				return Prompt{
					Text:    fmt.Sprintf("Delete %s in %s, with its Deployment and pods?", bold(name), bold(c.Namespace())),
					Buttons: [][]Choice{{{Label: "🗑 Yes, delete " + name, Value: "yes"}, {Label: "No, keep it", Value: "no"}}},
				}, nil
			},
			Accept: confirmDelete,
		},
	}.build()
}

func confirmDelete(ctx context.Context, c *Conv, answer string) (string, error) {
	name, ns := c.Get("name"), c.Namespace()
	if answer != "yes" {
		c.Done("Kept %s.", bold(name))
		return "", nil
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
