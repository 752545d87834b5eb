package conversations

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// createFlow: name → image → replicas → summary with Create/Cancel.
func createFlow() *Flow {
	return &Flow{
		Name: "create", Command: "/create",
		Begin: func(*Conv) string { return "name" },
		States: map[string]*State{
			"name": {
				Prompt: func(ctx context.Context, c *Conv) (Prompt, error) {
					if err := c.Allow(ctx, "create"); err != nil {
						return Prompt{}, err
					}
					return Prompt{Text: fmt.Sprintf("New app in %s. What is its name? %s", bold(c.Namespace()), hintName)}, nil
				},
				Pattern: oneWord, Hint: hintName,
				Accept: func(ctx context.Context, c *Conv, answer string) (string, error) {
					name, err := nameAnswer(answer)
					if err != nil {
						return "", err
					}
					if _, err := c.Apps().Get(ctx, c.Namespace(), name); err == nil {
						return "", Retry("%s already exists in %s; choose another name.", bold(name), bold(c.Namespace()))
					} else if !apierrors.IsNotFound(err) {
						return "", err
					}
					c.Set("name", name)
					return "image", nil
				},
			},
			"image": {
				Prompt: func(_ context.Context, c *Conv) (Prompt, error) {
					return Prompt{Text: fmt.Sprintf("Which image should %s run? %s", bold(c.Get("name")), hintImage)}, nil
				},
				Pattern: oneWord, Hint: hintImage,
				Accept: func(_ context.Context, c *Conv, answer string) (string, error) {
					image, err := imageAnswer(answer)
					if err != nil {
						return "", err
					}
					c.Set("image", image)
					return "replicas", nil
				},
			},
			"replicas": {
				Prompt: func(_ context.Context, c *Conv) (Prompt, error) {
					row := []Choice{}
					for _, n := range []string{"1", "2", "3", "5", "10"} {
						row = append(row, Choice{Label: n, Value: n})
					}
					return Prompt{Text: fmt.Sprintf("How many replicas of %s? Press a button or send a number from 0 to %d.", bold(c.Get("name")), v1alpha1.MaxReplicas), Buttons: [][]Choice{row}}, nil
				},
				Pattern: number, Hint: hintReplicas,
				Accept: func(_ context.Context, c *Conv, answer string) (string, error) {
					n, err := replicasAnswer(answer)
					if err != nil {
						return "", err
					}
					c.Set("replicas", strconv.Itoa(int(n)))
					return "confirm", nil
				},
			},
			"confirm": {
				Prompt: func(_ context.Context, c *Conv) (Prompt, error) {
					return Prompt{
						Text:    fmt.Sprintf("Create %s in %s with image %s and %s replicas?", bold(c.Get("name")), bold(c.Namespace()), code(c.Get("image")), c.Get("replicas")),
						Buttons: [][]Choice{{{Label: "✅ Create", Value: "create"}, {Label: "✖ Cancel", Value: "cancel"}}},
					}, nil
				},
				Accept: confirmCreate,
			},
		},
	}
}

// confirmCreate creates the TeleApp on Create, after checking the
// permission once more: it may have been revoked while the user typed.
func confirmCreate(ctx context.Context, c *Conv, answer string) (string, error) {
	name, ns := c.Get("name"), c.Namespace()
	if answer != "create" {
		c.Done("Cancelled: %s was not created.", bold(name))
		return "", nil
	}
	if err := c.Allow(ctx, "create"); err != nil {
		return "", err
	}
	replicas, err := replicasAnswer(c.Get("replicas"))
	if err != nil {
		return "", err
	}
	_, err = c.Apps().Create(ctx, ns, name, c.Get("image"), replicas, []string{strconv.FormatInt(c.ChatID(), 10)}, c.Audit())
	switch {
	case apierrors.IsAlreadyExists(err):
		return "", End("%s was created by someone else meanwhile; nothing was changed. See /status %s.", bold(name), esc(name))
	case err != nil:
		return "", clusterRefusal(err)
	}
	c.Done("✅ Created %s in %s: image %s, %d replicas. I'll tell this chat when it is ready.", bold(name), bold(ns), code(c.Get("image")), replicas)
	return "", nil
}
