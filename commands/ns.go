package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/chats"
)

var nsCommand = &command{
	word: "ns", usage: "/ns [namespace]", example: "/ns web",
	summary: "show or set this chat's namespace",
	takes:   "one namespace, or nothing",
	pattern: commandPattern("ns", `(?:\s+(?<namespace>(?>\S+)))?`),
	run:     runNamespace,
}

// runNamespace sets the chat's namespace, or with no argument lets the ns
// flow show it and offer others. Setting needs list permission there, so a
// chat is never pointed where its user sees nothing.
func runNamespace(ctx context.Context, r *Router, req *request) string {
	namespace := req.args["namespace"]
	if namespace == "" {
		return r.startFlow(ctx, req, "ns", nil)
	}
	if err := v1alpha1.ValidateName(namespace); err != nil {
		return req.usage("Bad namespace: " + esc(err.Error()) + ".")
	}
	if refusal := r.refusal(ctx, req, "list", namespace); refusal != "" {
		return refusal
	}
	var notAllowed *chats.NotAllowedError
	if err := r.cfg.Namespaces.Set(ctx, req.update.ChatID, namespace); errors.As(err, &notAllowed) {
		return "⛔ " + esc(capitalise(notAllowed.Error())) + "."
	} else if err != nil {
		return r.failure(req, err, namespace, "")
	}
	return fmt.Sprintf("This chat now works in %s.", bold(namespace))
}
