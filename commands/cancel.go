package commands

import (
	"context"
	"fmt"
)

// cancelWord is the one command that does not drop an open conversation
// before it runs: it is how a conversation is ended on purpose.
const cancelWord = "cancel"

var cancelCommand = &command{
	word: cancelWord, usage: "/cancel", example: "/cancel",
	summary: "end the conversation in progress",
	takes:   "nothing",
	pattern: commandPattern(cancelWord, ""),
	run:     runCancel,
}

func runCancel(ctx context.Context, r *Router, req *request) string {
	u := req.update
	flow, open, err := r.cfg.Conversations.Open(ctx, u.ChatID, u.UserID)
	if err == nil && open {
		open, err = r.cfg.Conversations.Cancel(ctx, u.ChatID, u.UserID)
	}
	switch {
	case err != nil:
		r.log.Error("cancel conversation", "chat", u.ChatID, "user", u.UserID, "err", err)
		return somethingWentWrong
	case !open:
		return "Nothing to cancel."
	}
	return fmt.Sprintf("Cancelled your %s.", code("/"+flow))
}
