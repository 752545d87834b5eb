package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

var scaleCommand = &command{
	word: "scale", usage: "/scale <name> <replicas|+N|-N>", example: "/scale web +2",
	summary: "set or change the number of replicas",
	takes:   "a name and a replica count, +N or -N",
	pattern: commandPattern("scale", `(?:\s+(?<name>(?>\S+))\s+(?<replicas>(?>\S+)))?`),
	run:     runScale,
}

func runScale(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "scale", nil)
	}
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	if problem != "" {
		return req.usage(problem)
	}
	change, problem := parseReplicaChange(req.args["replicas"])
	if problem != "" {
		return req.usage(problem)
	}
	if refusal := r.refusal(ctx, req, "update", namespace); refusal != "" {
		return refusal
	}
	from, to, err := r.cfg.Apps.Scale(ctx, namespace, name, change, req.audit())
	switch {
	case errors.Is(err, apps.ErrOutOfRange):
		return fmt.Sprintf("%s has %d replicas in %s; %s would make %d, but replicas must be from 0 to %d. Nothing changed.",
			bold(name), from, bold(namespace), code(req.args["replicas"]), int64(from)+int64(change.Delta), v1alpha1.MaxReplicas)
	case errors.Is(err, apps.ErrAlreadyApplied):
		return fmt.Sprintf("Already done: %s has %d replicas in %s.", bold(name), to, bold(namespace))
	case err != nil:
		return r.failure(req, err, namespace, name)
	case from == to:
		return fmt.Sprintf("%s already has %d replicas in %s.", bold(name), to, bold(namespace))
	}
	req.rollout = &progress.Rollout{Op: progress.OperationScale, Namespace: namespace, Name: name, From: from, To: to}
	return fmt.Sprintf("%s scaled %d → %d in %s", bold(name), from, to, bold(namespace))
}

// parseReplicaChange reads "5" (set) or "+2" / "-1" (change by).
func parseReplicaChange(arg string) (apps.ReplicaChange, string) {
	if arg[0] != '+' && arg[0] != '-' {
		n, problem := parseReplicas(arg)
		return apps.ReplicaChange{Set: ptr.To(n)}, problem
	}
	n, err := strconv.ParseInt(arg, 10, 32)
	if err != nil || n < -v1alpha1.MaxReplicas || n > v1alpha1.MaxReplicas {
		return apps.ReplicaChange{}, fmt.Sprintf("A change must be +N or -N with N from 0 to %d, not %s.", v1alpha1.MaxReplicas, code(arg))
	}
	return apps.ReplicaChange{Delta: int32(n)}, ""
}
