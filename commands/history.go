package commands

import (
	"context"
	"fmt"
	"strings"
	"time"
)

var historyCommand = &command{
	word: "history", usage: "/history <name>", example: "/history web",
	summary: "the images an app ran: revision, image, when, who",
	takes:   "one name",
	pattern: commandPattern("history", `\s+(?<name>(?>\S+))`),
	run:     runHistory,
}

func runHistory(ctx context.Context, r *Router, req *request) string {
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
	history := app.Status.History
	if len(history) == 0 {
		return fmt.Sprintf("%s in %s has no history yet: teleop records each image as it rolls out.", bold(name), bold(namespace))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "History of %s in %s, newest first:", bold(name), bold(namespace))
	current := true
	for i := len(history) - 1; i >= 0; i-- {
		rev := history[i]
		fmt.Fprintf(&b, "\n<b>%d</b> %s", rev.Revision, code(rev.Image))
		if rev.ChangedAt != nil {
			fmt.Fprintf(&b, " — %s", esc(rev.ChangedAt.UTC().Format(time.DateTime+" MST")))
		}
		if rev.ChangedBy != "" {
			fmt.Fprintf(&b, " by %s", esc(rev.ChangedBy))
		}
		if current && rev.Image == app.Spec.Image {
			b.WriteString(" ← running")
		}
		current = false
	}
	fmt.Fprintf(&b, "\n/rollback %s goes back to the previous image; /rollback %s &lt;revision&gt; to any of these.", esc(name), esc(name))
	return b.String()
}
