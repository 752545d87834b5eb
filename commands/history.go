package commands

import (
	"context"

	"github.com/teleop/teleop/commands/progress"
)

var historyCommand = &command{
	word: "history", usage: "/history <name>", example: "/history web",
	summary: "the images an app ran: revision, image, when, who",
	takes:   "one name, or nothing to pick the app",
	pattern: commandPattern("history", `(?:\s+(?<name>(?>\S+)))?`),
	run:     runHistory,
}

func runHistory(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "history", nil)
	}
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	if problem != "" {
		return req.usage(problem)
	}
	if refusal := r.refusal(ctx, req, "get", namespace); refusal != "" {
		return refusal
	}
	app, err := r.cfg.Apps.Get(ctx, namespace, name)
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	return progress.FormatHistory(app)
}
