package commands

import (
	"context"
	"fmt"
	"strconv"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

var createCommand = &command{
	word: "create", usage: "/create <name> <image> [replicas]", example: "/create web nginx:1.27 3",
	summary: "create an app; this chat hears how it goes",
	takes:   "a name and an image, and optionally a replica count",
	pattern: commandPattern("create", `(?:\s+(?<name>(?>\S+))\s+(?<image>(?>\S+))(?:\s+(?<replicas>(?>\S+)))?)?`),
	run:     runCreate,
}

func runCreate(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "create", nil)
	}
	namespace, name, image, reply := r.targetImage(ctx, req)
	if reply != "" {
		return reply
	}
	replicas := int32(1)
	if arg, given := req.args["replicas"]; given {
		var problem string
		if replicas, problem = parseReplicas(arg); problem != "" {
			return req.usage(problem)
		}
	}
	if refusal := r.refusal(ctx, req, "create", namespace); refusal != "" {
		return refusal
	}
	chat := strconv.FormatInt(req.update.ChatID, 10)
	if _, err := r.cfg.Apps.Create(ctx, namespace, name, image, replicas, []string{chat}, req.audit()); err != nil {
		return r.failure(req, err, namespace, name)
	}
	req.rollout = &progress.Rollout{Op: progress.OperationCreate, Namespace: namespace, Name: name, To: replicas}
	return fmt.Sprintf("✅ %s created in %s: %s × %d. I'll tell this chat how it goes.", bold(name), bold(namespace), code(image), replicas)
}

// parseReplicas reads an absolute replica count, 0..MaxReplicas.
func parseReplicas(arg string) (int32, string) {
	n, err := strconv.ParseInt(arg, 10, 32)
	if err != nil || arg[0] == '+' {
		return 0, fmt.Sprintf("Replicas must be a whole number from 0 to %d, not %s.", v1alpha1.MaxReplicas, code(arg))
	}
	if err := v1alpha1.ValidateReplicas(n); err != nil {
		return 0, esc(capitalise(err.Error())) + "."
	}
	return int32(n), ""
}
