package commands

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/inspect"
)

var eventsCommand = &command{
	word: "events", usage: "/events <name>", example: "/events web",
	summary: "the latest Events of an app, its Deployment and pods",
	takes:   "one name",
	pattern: commandPattern("events", `\s+(?<name>(?>\S+))`),
	run:     runEvents,
}

// maxEventMessage bounds one Event's message in the reply, so one chatty
// Event cannot crowd out the others.
const maxEventMessage = 300

func runEvents(ctx context.Context, r *Router, req *request) string {
	app, reply := r.readApp(ctx, req, "", access.ListEvents)
	if reply != "" {
		return reply
	}
	namespace, name := app.Namespace, app.Name
	events, err := r.cfg.Inspect.Events(ctx, namespace, name)
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	return formatEvents(namespace, name, events, time.Now())
}

// formatEvents lists events newest first in one message: as many as fit,
// then how many older ones were left out.
func formatEvents(namespace, name string, events []inspect.Event, now time.Time) string {
	if len(events) == 0 {
		return fmt.Sprintf("No Events for %s in %s. The API server keeps them for about an hour.", bold(name), bold(namespace))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Events of %s in %s, newest first:", bold(name), bold(namespace))
	for i, ev := range events {
		line := "\n" + eventLine(ev, now)
		omitted := fmt.Sprintf("\n… and %d older.", len(events)-i)
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line)+utf8.RuneCountInString(omitted) > MaxMessageLength {
			b.WriteString(omitted)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

func eventLine(ev inspect.Event, now time.Time) string {
	mark := "•"
	if ev.Type == "Warning" {
		mark = "⚠️"
	}
	message := ev.Message
	if r := []rune(message); len(r) > maxEventMessage {
		message = string(r[:maxEventMessage]) + "…"
	}
	line := fmt.Sprintf("%s %s ago %s %s: %s", mark, duration.HumanDuration(now.Sub(ev.Last)), bold(ev.Reason), code(ev.Object), esc(message))
	if ev.Count > 1 {
		line += fmt.Sprintf(" (×%d)", ev.Count)
	}
	return line
}
