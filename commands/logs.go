package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/teleop/teleop/commands/report"
	"github.com/teleop/teleop/operator/access"
)

var logsCommand = &command{
	word: "logs", usage: "/logs <name> [pod] [lines]", example: "/logs web 100",
	summary: fmt.Sprintf("the last lines of a pod's log (%d by default, at most %d)", report.DefaultLogLines, report.MaxLogLines),
	takes:   "a name, then optionally a pod and a number of lines; or nothing to pick the app",
	// A last argument of digits only is the number of lines, not a pod.
	pattern: commandPattern("logs", `(?:\s+(?<name>(?>\S+))(?:\s+(?<pod>(?!\d+\s*$)(?>\S+)))?(?:\s+(?<lines>(?>\S+)))?)?`),
	run:     runLogs,
}

func runLogs(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "logs", nil)
	}
	lines, problem := parseLogLines(req.args["lines"])
	if podProblem := badPodName(req.args["pod"]); podProblem != "" {
		problem = podProblem
	}
	app, reply := r.readApp(ctx, req, problem, access.GetPodLogs)
	if reply != "" {
		return reply
	}
	namespace, name := app.Namespace, app.Name
	text, err := report.LogOf(ctx, r.cfg.Inspect, namespace, name, req.args["pod"], lines)
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	return text
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
		return report.DefaultLogLines, ""
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n < 1 || n > report.MaxLogLines || strings.TrimLeft(arg, "0123456789") != "" {
		return 0, fmt.Sprintf("The number of lines must be from 1 to %d, not %s.", report.MaxLogLines, code(arg))
	}
	return n, ""
}
