package commands

import "context"

var deleteCommand = &command{
	word: "delete", usage: "/delete <name>", example: "/delete web",
	summary: "delete an app, after you confirm",
	takes:   "one name, or nothing to pick from a list",
	pattern: commandPattern("delete", `(?:\s+(?<name>(?>\S+)))?`),
	run:     runDelete,
}

// runDelete checks the name and the permission, then lets the conversations
// engine's delete flow ask Yes/No; only the asker's Yes deletes.
func runDelete(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "delete", nil)
	}
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	if problem != "" {
		return req.usage(problem)
	}
	if refusal := r.refusal(ctx, req, "delete", namespace); refusal != "" {
		return refusal
	}
	if _, err := r.cfg.Apps.Get(ctx, namespace, name); err != nil {
		return r.failure(req, err, namespace, name)
	}
	return r.startFlow(ctx, req, "delete", map[string]string{"name": name, "namespace": namespace})
}
