package commands

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

var listCommand = &command{
	word: "list", usage: "/list", example: "/list",
	summary: "the apps of this chat's namespace, with phase and ready/desired",
	takes:   "nothing",
	pattern: commandPattern("list", ""),
	run:     runList,
}

func runList(ctx context.Context, r *Router, req *request) string {
	namespace, err := r.chatNamespace(ctx, req)
	if err != nil {
		return r.failure(req, err, namespace, "")
	}
	if refusal := r.refusal(ctx, req, "list", namespace); refusal != "" {
		return refusal
	}
	list, err := r.cfg.Apps.List(ctx, namespace)
	if err != nil {
		return r.failure(req, err, namespace, "")
	}
	if len(list) == 0 {
		return fmt.Sprintf("No apps in %s yet. Create one: %s", bold(namespace), code(createCommand.example))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Apps in %s:", bold(namespace))
	for i := range list {
		fmt.Fprintf(&b, "\n%s — %s, %s ready", bold(list[i].Name), esc(phaseOf(&list[i])), readyOfDesired(&list[i]))
	}
	return b.String()
}

func phaseOf(app *v1alpha1.TeleApp) string {
	if app.Status.Phase == "" {
		return string(v1alpha1.PhasePending)
	}
	return string(app.Status.Phase)
}

func readyOfDesired(app *v1alpha1.TeleApp) string {
	return fmt.Sprintf("%d/%d", app.Status.ReadyReplicas, ptr.Deref(app.Spec.Replicas, 1))
}
