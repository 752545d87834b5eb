package commands

import (
	"context"
	"fmt"
	"strings"
)

var whoamiCommand = &command{
	word: "whoami", usage: "/whoami", example: "/whoami",
	summary: "your Telegram ID and who you are to Kubernetes",
	takes:   "nothing",
	pattern: commandPattern("whoami", ""),
	run:     runWhoami,
}

func runWhoami(ctx context.Context, r *Router, req *request) string {
	namespace, err := r.chatNamespace(ctx, req)
	if err != nil {
		return r.failure(req, err, "", "")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Telegram ID: %s", code(fmt.Sprint(req.update.UserID)))
	if req.update.Username != "" {
		fmt.Fprintf(&b, " (@%s)", esc(req.update.Username))
	}
	fmt.Fprintf(&b, "\nKubernetes user: %s\nGroups: %s\nThis chat's namespace: %s",
		code(req.identity.User), code(strings.Join(req.identity.Groups, ", ")), bold(namespace))
	return b.String()
}
