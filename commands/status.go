package commands

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/utils/ptr"
)

var statusCommand = &command{
	word: "status", usage: "/status <name>", example: "/status web",
	summary: "phase, replicas, conditions and recent problems of an app",
	takes:   "one name",
	pattern: commandPattern("status", `\s+(?<name>(?>\S+))`),
	run:     runStatus,
}

func runStatus(ctx context.Context, r *Router, req *request) string {
	app, reply := r.readApp(ctx, req, "")
	if reply != "" {
		return reply
	}
	namespace, name := app.Namespace, app.Name
	var b strings.Builder
	fmt.Fprintf(&b, "%s in %s: <b>%s</b>\n", bold(name), bold(namespace), esc(phaseOf(app)))
	fmt.Fprintf(&b, "Image: %s\n", code(app.Spec.Image))
	fmt.Fprintf(&b, "Replicas: %d desired, %d ready, %d available, %d up to date",
		ptr.Deref(app.Spec.Replicas, 1), app.Status.ReadyReplicas, app.Status.AvailableReplicas, app.Status.UpdatedReplicas)
	for _, c := range app.Status.Conditions {
		fmt.Fprintf(&b, "\n• %s: %s", esc(c.Type), esc(string(c.Status)))
		if c.Reason != "" {
			fmt.Fprintf(&b, " (%s)", esc(c.Reason))
		}
		if c.Message != "" {
			fmt.Fprintf(&b, " — %s", esc(c.Message))
		}
	}
	if app.Status.Message != "" {
		fmt.Fprintf(&b, "\nLatest: %s", esc(app.Status.Message))
	}
	if app.Status.ObservedGeneration < app.Generation {
		b.WriteString("\n(The operator has not caught up with the latest change yet.)")
	}
	return b.String()
}
