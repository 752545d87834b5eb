package commands

import (
	"context"
	"time"

	"github.com/teleop/teleop/commands/report"
	"github.com/teleop/teleop/operator/access"
)

var eventsCommand = &command{
	word: "events", usage: "/events <name>", example: "/events web",
	summary: "the latest Events of an app, its Deployment and pods",
	takes:   "one name, or nothing to pick the app",
	pattern: commandPattern("events", `(?:\s+(?<name>(?>\S+)))?`),
	run:     runEvents,
}

func runEvents(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "events", nil)
	}
	app, reply := r.readApp(ctx, req, "", access.ListEvents)
	if reply != "" {
		return reply
	}
	namespace, name := app.Namespace, app.Name
	text, err := report.EventsOf(ctx, r.cfg.Inspect, namespace, name, time.Now())
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	return text
}
