package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/apps"
)

var deployPattern = `(?:\s+(?<name>(?>\S+))\s+(?<image>(?>\S+)))?`

var deployCommand = &command{
	word: "deploy", usage: "/deploy <name> <image>", example: "/deploy web nginx:1.28",
	summary: "roll out another image; the reply follows the rollout",
	takes:   "a name and an image, or nothing to pick the app",
	pattern: commandPattern("deploy", deployPattern),
	run:     runDeploy,
}

// imageCommand is /deploy under the name kubectl set image users reach for.
var imageCommand = &command{
	word: "image", usage: "/image <name> <image>", example: "/image web nginx:1.28",
	summary: "the same as /deploy",
	takes:   deployCommand.takes,
	pattern: commandPattern("image", deployPattern),
	run:     runDeploy,
}

func runDeploy(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "deploy", nil)
	}
	namespace, name, image, reply := r.targetImage(ctx, req)
	if reply != "" {
		return reply
	}
	if refusal := r.refusal(ctx, req, "patch", namespace); refusal != "" {
		return refusal
	}
	return r.deploy(ctx, req, namespace, name, image)
}

// deploy sets the image of namespace/name for an authorised request and
// has the reply follow the rollout, with a [Roll back] button should it get
// stuck.
func (r *Router) deploy(ctx context.Context, req *request, namespace, name, image string) string {
	before, after, err := r.cfg.Apps.SetImage(ctx, namespace, name, image, req.audit())
	switch {
	case errors.Is(err, apps.ErrUnchanged):
		return fmt.Sprintf("%s already runs %s in %s; nothing changed. /restart %s replaces its pods.", bold(name), code(image), bold(namespace), esc(name))
	case errors.Is(err, apps.ErrAlreadyApplied):
		return fmt.Sprintf("Already done: %s runs %s in %s.", bold(name), code(after.Spec.Image), bold(namespace))
	case err != nil:
		return r.failure(req, err, namespace, name)
	}
	req.rollout = &progress.Rollout{
		Op: progress.OperationDeploy, Namespace: namespace, Name: name,
		To: after.Spec.DesiredReplicas(), Image: image, Generation: after.Generation,
		Undo: r.undoButton(before),
	}
	return progress.Started(*req.rollout, before.Spec.Image)
}
