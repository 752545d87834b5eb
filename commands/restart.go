package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/apps"
)

var restartCommand = &command{
	word: "restart", usage: "/restart <name>", example: "/restart web",
	summary: "replace an app's pods one by one (a rolling restart)",
	takes:   "one name, or nothing to pick the app",
	pattern: commandPattern("restart", `(?:\s+(?<name>(?>\S+)))?`),
	run:     runRestart,
}

func runRestart(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "restart", nil)
	}
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	if problem != "" {
		return req.usage(problem)
	}
	if refusal := r.refusal(ctx, req, "patch", namespace); refusal != "" {
		return refusal
	}
	app, err := r.cfg.Apps.Restart(ctx, namespace, name, time.Now(), req.audit())
	switch {
	case errors.Is(err, apps.ErrAlreadyApplied), errors.Is(err, apps.ErrUnchanged):
		return fmt.Sprintf("Already done: %s was restarted at %s.", bold(name), esc(app.Spec.RestartedAt))
	case err != nil:
		return r.failure(req, err, namespace, name)
	}
	req.rollout = &progress.Rollout{Op: progress.OperationRestart, Namespace: namespace, Name: name, To: app.Spec.DesiredReplicas(), Generation: app.Generation}
	return progress.Started(*req.rollout, app.Spec.Image)
}
