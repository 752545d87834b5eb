package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/inspect"
)

// The number of log lines /logs shows by default and at most.
const (
	DefaultLogLines = 50
	MaxLogLines     = 200
)

var logsCommand = &command{
	word: "logs", usage: "/logs <name> [pod] [lines]", example: "/logs web 100",
	summary: fmt.Sprintf("the last lines of a pod's log (%d by default, at most %d)", DefaultLogLines, MaxLogLines),
	takes:   "a name, then optionally a pod and a number of lines",
	// A last argument of digits only is the number of lines, not a pod.
	pattern: commandPattern("logs", `\s+(?<name>(?>\S+))(?:\s+(?<pod>(?!\d+\s*$)(?>\S+)))?(?:\s+(?<lines>(?>\S+)))?`),
	run:     runLogs,
}

func runLogs(ctx context.Context, r *Router, req *request) string {
	lines, problem := parseLogLines(req.args["lines"])
	if podProblem := badPodName(req.args["pod"]); podProblem != "" {
		problem = podProblem
	}
	app, reply := r.readApp(ctx, req, problem, access.GetPodLogs)
	if reply != "" {
		return reply
	}
	namespace, name := app.Namespace, app.Name
	pods, err := r.cfg.Inspect.Pods(ctx, namespace, name)
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	pod, reply := choosePod(pods, req.args["pod"], namespace, name)
	if reply != "" {
		return reply
	}
	text, truncated, err := r.cfg.Inspect.Logs(ctx, namespace, pod.Name, lines)
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	return formatLog(pod, lines, text, truncated)
}

// badPodName says what is wrong with a pod name typed in, or "".
func badPodName(pod string) string {
	if pod == "" {
		return ""
	}
	if errs := validation.IsDNS1123Subdomain(pod); len(errs) > 0 {
		return "Bad pod name: " + esc(errs[0]) + "."
	}
	return ""
}

// parseLogLines reads the number of lines, DefaultLogLines when absent.
func parseLogLines(arg string) (int64, string) {
	if arg == "" {
		return DefaultLogLines, ""
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n < 1 || n > MaxLogLines || strings.TrimLeft(arg, "0123456789") != "" {
		return 0, fmt.Sprintf("The number of lines must be from 1 to %d, not %s.", MaxLogLines, code(arg))
	}
	return n, ""
}

// choosePod picks the pod named, or by default the newest that is not
// Ready, else the newest; reply explains when there is none to pick.
func choosePod(newestFirst []inspect.Pod, named, namespace, name string) (inspect.Pod, string) {
	if named == "" {
		if pod, ok := inspect.DefaultPod(newestFirst); ok {
			return pod, ""
		}
		return inspect.Pod{}, fmt.Sprintf("%s has no pods in %s right now. /status %s says why.", bold(name), bold(namespace), esc(name))
	}
	names := make([]string, 0, len(newestFirst))
	for _, p := range newestFirst {
		if p.Name == named {
			return p, ""
		}
		names = append(names, code(p.Name))
	}
	if len(names) == 0 {
		return inspect.Pod{}, fmt.Sprintf("%s has no pods in %s right now, so none called %s.", bold(name), bold(namespace), code(named))
	}
	return inspect.Pod{}, fmt.Sprintf("%s has no pod %s in %s. Its pods: %s.", bold(name), code(named), bold(namespace), strings.Join(names, ", "))
}

// formatLog shows the log in a preformatted block; the transport splits a
// long one into several messages.
func formatLog(pod inspect.Pod, lines int64, text string, truncated bool) string {
	state := "Ready"
	if !pod.Ready {
		state = "not Ready"
	}
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return fmt.Sprintf("The log of %s (%s) is empty.", code("pod/"+pod.Name), state)
	}
	header := fmt.Sprintf("Last %d lines of %s (%s):", lines, code("pod/"+pod.Name), state)
	if truncated {
		header = fmt.Sprintf("The newest %d KiB of the last %d lines of %s (%s):", inspect.MaxLogBytes>>10, lines, code("pod/"+pod.Name), state)
	}
	return header + "\n<pre>" + esc(text) + "</pre>"
}
