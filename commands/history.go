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
	app, reply := r.readApp(ctx, req, "")
	if reply != "" {
		return reply
	}
	return progress.FormatHistory(app)
}
