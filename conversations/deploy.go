package conversations

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// deployFlow: pick the app → type the image; the final message follows the
// rollout as the one-shot /deploy's reply does.
func deployFlow() *Flow {
	return &Flow{
		Name: "deploy", Command: "/deploy",
		Begin: func(*Conv) string { return "pick" },
		States: map[string]*State{
			"pick": pickApp("patch", "Which app in %s should get another image?", "image"),
			"image": {
				Prompt:  deployPrompt,
				Pattern: oneWord, Hint: hintImage,
				Accept: deployImage,
			},
		},
	}
}

func deployPrompt(ctx context.Context, c *Conv) (Prompt, error) {
	app, err := c.Apps().Get(ctx, c.Namespace(), c.Get("name"))
	if apierrors.IsNotFound(err) {
		return Prompt{}, End("There is no app %s in %s.", bold(c.Get("name")), bold(c.Namespace()))
	} else if err != nil {
		return Prompt{}, err
	}
	return Prompt{Text: fmt.Sprintf("%s runs %s. Which image should it run? %s", bold(app.Name), code(app.Spec.Image), hintImage)}, nil
}

func deployImage(ctx context.Context, c *Conv, answer string) (string, error) {
	if err := v1alpha1.ValidateImage(answer); err != nil {
		return "", Retry("%s. %s", esc(capitalise(err.Error())), hintImage)
	}
	if err := c.Allow(ctx, "patch"); err != nil {
		return "", err
	}
	name, ns := c.Get("name"), c.Namespace()
	before, after, err := c.Apps().SetImage(ctx, ns, name, answer, c.Audit())
	switch {
	case errors.Is(err, apps.ErrUnchanged):
		return "", Retry("%s already runs %s; send another image, or /cancel.", bold(name), code(answer))
	case errors.Is(err, apps.ErrAlreadyApplied):
		c.Done("Already done: %s runs %s in %s.", bold(name), code(after.Spec.Image), bold(ns))
		return "", nil
	case apierrors.IsNotFound(err):
		return "", End("%s is gone from %s; nothing was changed.", bold(name), bold(ns))
	case err != nil:
		return "", clusterRefusal(err)
	}
	c.Follow(progress.Rollout{
		Op: progress.OperationDeploy, Namespace: ns, Name: name,
		To: after.Spec.DesiredReplicas(), Image: answer, Generation: after.Generation,
	}, before.Spec.Image)
	return "", nil
}
