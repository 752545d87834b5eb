package commands

import (
	"context"
	"strings"
)

var startCommand = &command{
	word: "start", usage: "/start", takes: "nothing", example: "/start", summary: "what I can do",
	// Telegram's deep links add a payload to /start; it carries nothing for us.
	pattern: commandPattern("start", `(?:\s+[A-Za-z0-9_-]{1,64})?`),
	run:     runHelp,
}

var helpCommand = &command{
	word: "help", usage: "/help", takes: "nothing", example: "/help", summary: "this message",
	pattern: commandPattern("help", ""),
	run:     runHelp,
}

func runHelp(_ context.Context, r *Router, _ *request) string {
	var b strings.Builder
	b.WriteString("I run your apps on Kubernetes from this chat.\n\n")
	for _, c := range r.grammar.ordered {
		if c.word == "start" { // /help is the same thing
			continue
		}
		b.WriteString(code(c.usage) + " — " + esc(c.summary))
		if c.example != c.usage {
			b.WriteString(", e.g. " + code(c.example))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nWithout arguments, /create, /scale, /delete, /deploy, /restart, /rollback, /history and /ns ask step by step. " +
		"A name may be " + code("namespace/name") + "; otherwise this chat's namespace applies (see /ns).")
	return b.String()
}
