// Package report words what the read-only verbs show: an app's Events and
// a pod's log. The one-shot /events and /logs (package commands) and their
// conversations (package conversations) both answer with it.
package report

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/inspect"
)

// The number of log lines /logs shows by default and at most.
const (
	DefaultLogLines = 50
	MaxLogLines     = 200
)

// Reader reads what the reports show; *inspect.Reader provides it.
type Reader interface {
	Events(ctx context.Context, namespace, name string) ([]inspect.Event, error)
	Pods(ctx context.Context, namespace, name string) ([]inspect.Pod, error)
	Logs(ctx context.Context, namespace, pod string, lines int64) (text string, truncated bool, err error)
}

// EventsOf reads the Events of namespace/name and words them (HTML).
func EventsOf(ctx context.Context, r Reader, namespace, name string, now time.Time) (string, error) {
	events, err := r.Events(ctx, namespace, name)
	if err != nil {
		return "", err
	}
	return formatEvents(namespace, name, events, now), nil
}

// LogOf reads the last lines of the log of namespace/name's pod, or of its
// default pod (inspect.DefaultPod) when pod is "", and words it (HTML); when
// there is no such pod it says so instead.
func LogOf(ctx context.Context, r Reader, namespace, name, pod string, lines int64) (string, error) {
	pods, err := r.Pods(ctx, namespace, name)
	if err != nil {
		return "", err
	}
	chosen, problem := choosePod(pods, pod, namespace, name)
	if problem != "" {
		return problem, nil
	}
	text, truncated, err := r.Logs(ctx, namespace, chosen.Name, lines)
	if err != nil {
		return "", err
	}
	return formatLog(chosen, lines, text, truncated), nil
}

// maxEventMessage bounds one Event's message in the reply, so one chatty
// Event cannot crowd out the others.
const maxEventMessage = 300

// formatEvents lists events newest first in one message: as many as fit, then
// how many older ones were left out.
func formatEvents(namespace, name string, events []inspect.Event, now time.Time) string {
	if len(events) == 0 {
		return fmt.Sprintf("No Events for %s in %s. The API server keeps them for about an hour.", bot.Bold(name), bot.Bold(namespace))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Events of %s in %s, newest first:", bot.Bold(name), bot.Bold(namespace))
	for i, ev := range events {
		line := "\n" + eventLine(ev, now)
		omitted := fmt.Sprintf("\n… and %d older.", len(events)-i)
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line)+utf8.RuneCountInString(omitted) > bot.MaxTextLength {
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
	line := fmt.Sprintf("%s %s ago %s %s: %s", mark, duration.HumanDuration(now.Sub(ev.Last)), bot.Bold(ev.Reason), bot.Code(ev.Object), bot.EscapeHTML(message))
	if ev.Count > 1 {
		line += fmt.Sprintf(" (×%d)", ev.Count)
	}
	return line
}

// choosePod picks the pod named, or by default the newest that is not
// Ready, else the newest; problem explains when there is none to pick.
func choosePod(newestFirst []inspect.Pod, named, namespace, name string) (pod inspect.Pod, problem string) {
	if named == "" {
		if pod, ok := inspect.DefaultPod(newestFirst); ok {
			return pod, ""
		}
		return inspect.Pod{}, fmt.Sprintf("%s has no pods in %s right now. /status %s says why.", bot.Bold(name), bot.Bold(namespace), bot.EscapeHTML(name))
	}
	names := make([]string, 0, len(newestFirst))
	for _, p := range newestFirst {
		if p.Name == named {
			return p, ""
		}
		names = append(names, bot.Code(p.Name))
	}
	if len(names) == 0 {
		return inspect.Pod{}, fmt.Sprintf("%s has no pods in %s right now, so none called %s.", bot.Bold(name), bot.Bold(namespace), bot.Code(named))
	}
	return inspect.Pod{}, fmt.Sprintf("%s has no pod %s in %s. Its pods: %s.", bot.Bold(name), bot.Code(named), bot.Bold(namespace), strings.Join(names, ", "))
}

// formatLog shows a pod's log in a preformatted block; the transport splits a
// long one into several messages.
func formatLog(pod inspect.Pod, lines int64, text string, truncated bool) string {
	state := "Ready"
	if !pod.Ready {
		state = "not Ready"
	}
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return fmt.Sprintf("The log of %s (%s) is empty.", bot.Code("pod/"+pod.Name), state)
	}
	header := fmt.Sprintf("Last %d lines of %s (%s):", lines, bot.Code("pod/"+pod.Name), state)
	if truncated {
		header = fmt.Sprintf("The newest %d KiB of the last %d lines of %s (%s):", inspect.MaxLogBytes>>10, lines, bot.Code("pod/"+pod.Name), state)
	}
	return header + "\n<pre>" + bot.EscapeHTML(text) + "</pre>"
}
