package conversations

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/apps"
)

// deployFlow: pick the app → type the image; the final message follows the
// rollout as the one-shot /deploy's reply does.
func deployFlow() *Flow {
	return appFlow{
		name: "deploy", question: "Which app in %s should get another image?", need: onTeleApps("patch"),
		nextName: "image", next: &State{Prompt: deployPrompt, Pattern: oneWord, Hint: hintImage, Accept: deployImage},
	}.build()
}

func deployPrompt(ctx context.Context, c *Conv) (Prompt, error) {
	app, err := pickedApp(ctx, c)
	if err != nil {
		return Prompt{}, err
	}
	return Prompt{Text: fmt.Sprintf("%s runs %s. Which image should it run? %s", bold(app.Name), code(app.Spec.Image), hintImage)}, nil
}

func deployImage(ctx context.Context, c *Conv, answer string) (string, error) {
	image, err := imageAnswer(answer)
	if err != nil {
		return "", err
	}
	name, ns := c.Get("name"), c.Namespace()
	before, after, err := c.Apps().SetImage(ctx, ns, name, image, c.Audit())
	switch {
	case errors.Is(err, apps.ErrUnchanged):
		return "", Retry("%s already runs %s; send another image, or /cancel.", bold(name), code(image))
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
		To: after.Spec.DesiredReplicas(), Image: image, Generation: after.Generation,
	}, before.Spec.Image)
	return "", nil
}
