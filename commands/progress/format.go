// Package progress puts what happens to TeleApps into words for the chats:
// the wording of announcements (FormatNotice), the adapter that delivers them
// through the bot's Messenger (NewNotifier), and the live progress of a
// /create or /scale reply (Tracker).
package progress

import (
	"fmt"
	"html"
	"strings"

	"github.com/teleop/teleop/operator/announce"
)

// FormatNotice words a notice as Telegram HTML, everything from the
// cluster escaped.
func FormatNotice(n announce.Notice) string {
	name := "<b>" + html.EscapeString(n.Name) + "</b>"
	ns := html.EscapeString(n.Namespace)
	switch n.Kind {
	case announce.KindReady:
		return fmt.Sprintf("✅ %s is ready: %d/%d (%s) in %s", name, n.Ready, n.Desired, html.EscapeString(n.Image), ns)
	case announce.KindScaled:
		icon := "📈"
		if n.ToReplicas < n.FromReplicas {
			icon = "📉"
		}
		return fmt.Sprintf("%s %s scaled %d → %d in %s%s", icon, name, n.FromReplicas, n.ToReplicas, ns, by(n.Actor))
	case announce.KindRestarted:
		return fmt.Sprintf("🔄 %s restarted in %s%s: its pods are replaced one by one", name, ns, by(n.Actor))
	case announce.KindDeleted:
		return fmt.Sprintf("🗑 %s deleted from %s%s", name, ns, by(n.Actor))
	case announce.KindDegraded:
		return fmt.Sprintf("⚠️ %s is degraded in %s: %s", name, ns, problem(n))
	case announce.KindFailed:
		return fmt.Sprintf("❌ %s failed in %s: %s", name, ns, problem(n))
	default:
		return fmt.Sprintf("ℹ️ %s in %s: %s", name, ns, html.EscapeString(string(n.Kind)))
	}
}

func by(actor string) string {
	if actor == "" {
		return ""
	}
	return " by " + html.EscapeString(actor)
}

// problem is what went wrong, and what to do about it when a person must act.
func problem(n announce.Notice) string {
	what := n.Message
	if what == "" {
		what = n.Reason
	}
	if what == "" {
		what = "no reason given"
	}
	text := html.EscapeString(what)
	if hint := Remedy(n.Reason, n.Message, n.Image, n.Name); hint != "" {
		text += " — " + hint
	}
	return text
}

// remedies are what a person can do about a problem, by the condition
// reason or by words of the API server's message (the first that matches:
// quota comes before forbidden, as a quota refusal is a 403 that says
// "forbidden: exceeded quota"); {image} and {name} are filled in.
var remedies = []struct {
	reasons []string
	words   []string
	hint    string
}{
	{
		reasons: []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "InvalidImage"},
		words:   []string{"invalid image", "image pull"},
		hint:    "check that the image {image} exists and can be pulled, then set a good one (kubectl set image, or delete and /create again)",
	},
	{
		reasons: []string{"QuotaExceeded", "ExceededQuota"},
		words:   []string{"exceeded quota", "quota exceeded"},
		hint:    "the namespace's ResourceQuota is used up: scale something down or ask an admin to raise the quota",
	},
	{
		reasons: []string{"Forbidden"},
		words:   []string{"forbidden"},
		hint:    "teleop lacks a permission in this namespace: ask a cluster admin to grant it (see deploy/ RBAC)",
	},
	{
		reasons: []string{"ErrResourceExists", "NameConflict", "AlreadyExists"},
		words:   []string{"already exists", "not owned", "owned by"},
		hint:    "a Deployment or Service named {name} that teleop does not own is in the way: delete or rename it, or pick another name",
	},
	{
		reasons: []string{"Invalid"},
		words:   []string{"is invalid"},
		hint:    "the API server refused what this TeleApp asks for: fix its spec (kubectl edit tapp/{name})",
	},
	{
		reasons: []string{"CrashLoopBackOff"},
		hint:    "the container keeps exiting: look at its logs (kubectl logs) and fix the image or its env",
	},
	{
		reasons: []string{"CreateContainerConfigError"},
		hint:    "the container's configuration is wrong (a missing ConfigMap or Secret?): check kubectl describe pod",
	},
	{
		reasons: []string{"ProgressDeadlineExceeded"},
		hint:    "the rollout is stuck: /status {name} shows why",
	},
}

// Remedy says what to do about a problem given its reason and message, or
// "" when nobody has to do anything. The reason decides when it is known;
// otherwise words of the message do. image and name fill in the advice; the
// result is Telegram HTML.
func Remedy(reason, message, image, name string) string {
	fill := strings.NewReplacer("{image}", "<code>"+html.EscapeString(image)+"</code>", "{name}", html.EscapeString(name))
	for _, r := range remedies {
		if matchesAny(reason, r.reasons) {
			return fill.Replace(r.hint)
		}
	}
	lower := strings.ToLower(message)
	for _, r := range remedies {
		if containsAny(lower, r.words) {
			return fill.Replace(r.hint)
		}
	}
	return ""
}

func matchesAny(reason string, reasons []string) bool {
	for _, r := range reasons {
		if strings.EqualFold(reason, r) {
			return true
		}
	}
	return false
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
