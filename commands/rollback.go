package commands

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// AppIndex finds TeleApps in the TeleApp informer's cache by an index; the
// informer's cache.Indexer, with IndexByUID added as UIDIndex, provides it.
type AppIndex interface {
	ByIndex(indexName, indexedValue string) ([]any, error)
}

// UIDIndex names the TeleApp informer's index by UID, through which a [Roll
// back] button finds its app.
const UIDIndex = "uid"

// IndexByUID is the cache.IndexFunc of UIDIndex.
func IndexByUID(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("index by UID: %w", err)
	}
	return []string{string(m.GetUID())}, nil
}

// undoPrefix starts the callback data of a [Roll back] button:
// "rb:<TeleApp UID>:<revision>", at most 3+36+1+19 of Telegram's 64 bytes.
const undoPrefix = "rb:"

var rollbackCommand = &command{
	word: "rollback", usage: "/rollback <name> [revision]", example: "/rollback web",
	summary: "go back to the previous image, or to a revision of /history",
	takes:   "a name and optionally a revision number from /history, or nothing to pick the app",
	pattern: commandPattern("rollback", `(?:\s+(?<name>(?>\S+))(?:\s+(?<revision>(?>\S+)))?)?`),
	run:     runRollback,
}

func runRollback(ctx context.Context, r *Router, req *request) string {
	if req.args["name"] == "" {
		return r.startFlow(ctx, req, "rollback", nil)
	}
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return r.failure(req, err, namespace, name)
	}
	if problem != "" {
		return req.usage(problem)
	}
	var target apps.RollbackTarget
	if arg, given := req.args["revision"]; given {
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 1 || arg[0] == '+' {
			return req.usage(fmt.Sprintf("A revision is a number from /history, such as 3, not %s.", code(arg)))
		}
		target.Revision = n
	}
	if refusal := r.refusal(ctx, req, "patch", namespace); refusal != "" {
		return refusal
	}
	return r.rollback(ctx, req, namespace, name, target)
}

// rollback goes back to target for an authorised request and has the reply
// follow the rollout.
func (r *Router) rollback(ctx context.Context, req *request, namespace, name string, target apps.RollbackTarget) string {
	before, after, to, err := r.cfg.Apps.Rollback(ctx, namespace, name, target, req.audit())
	switch {
	case errors.Is(err, apps.ErrNoRevision) && target.Revision != 0:
		return fmt.Sprintf("%s has no revision %d in %s; /history %s lists them. Nothing changed.", bold(name), target.Revision, bold(namespace), esc(name))
	case errors.Is(err, apps.ErrNoRevision):
		return fmt.Sprintf("%s has run no other image in %s that I know of; /history %s lists them. Nothing changed.", bold(name), bold(namespace), esc(name))
	case errors.Is(err, apps.ErrUnchanged):
		return fmt.Sprintf("%s already runs %s (revision %d) in %s; nothing changed.", bold(name), code(to.Image), to.Revision, bold(namespace))
	case errors.Is(err, apps.ErrAlreadyApplied):
		return fmt.Sprintf("Already done: %s runs %s in %s.", bold(name), code(after.Spec.Image), bold(namespace))
	case errors.Is(err, apps.ErrReplaced):
		return appGone
	case err != nil:
		return r.failure(req, err, namespace, name)
	}
	req.rollout = &progress.Rollout{
		Op: progress.OperationRollback, Namespace: namespace, Name: name,
		To: after.Spec.DesiredReplicas(), Image: to.Image, Revision: to.Revision, Generation: after.Generation,
	}
	return progress.Started(*req.rollout, before.Spec.Image)
}

// undoButton is the [Roll back] button a deploy from before offers, should
// its rollout get stuck: it names the app by UID, so that it never rolls
// back another app given the same name later, and the revision running
// before the deploy, 0 when the history did not hold it yet (which means the
// previous image). Without an index to find the app by, no button.
func (r *Router) undoButton(before *v1alpha1.TeleApp) *bot.Button {
	if r.cfg.Index == nil || before.UID == "" {
		return nil
	}
	var revision int64
	if latest := before.Status.LatestRevision(); latest != nil && latest.Image == before.Spec.Image {
		revision = latest.Revision
	}
	return &bot.Button{Text: "↩️ Roll back", Data: fmt.Sprintf("%s%s:%d", undoPrefix, before.UID, revision)}
}

// parseUndo reads the callback data of a [Roll back] button.
func parseUndo(data string) (uid string, revision int64, ok bool) {
	rest, ours := strings.CutPrefix(data, undoPrefix)
	uid, number, found := strings.Cut(rest, ":")
	revision, err := strconv.ParseInt(number, 10, 64)
	return uid, revision, ours && found && uid != "" && err == nil && revision >= 0 && number[0] != '+'
}

// pressUndo rolls back for a press of a [Roll back] button, as /rollback
// would for the user who pressed it: the same permission check, the same
// reply, followed live. The button names its app by UID, so one of a
// deleted app finds nothing and says so, even if another app has its name
// now; and it names the revision that ran before the deploy, so a second
// press finds it running and changes nothing. It reports whether the press
// was such a button.
func (r *Router) pressUndo(ctx context.Context, u bot.Update) bool {
	uid, revision, ok := parseUndo(u.Callback.Data)
	if !ok {
		return false
	}
	found, err := r.cfg.Index.ByIndex(UIDIndex, uid)
	if err != nil {
		r.log.Error("find the app of a roll back button", "chat", u.ChatID, "uid", uid, "err", err)
		r.answer(ctx, u, somethingWentWrong)
		return true
	}
	if len(found) == 0 {
		r.answer(ctx, u, appGone)
		return true
	}
	app := found[0].(*v1alpha1.TeleApp)
	r.answer(ctx, u, "")
	u.Text = strings.TrimSpace(fmt.Sprintf("/rollback %s/%s %s", app.Namespace, app.Name, revisionArg(revision)))
	req := &request{update: u, cmd: rollbackCommand, identity: identityOf(u)}
	reply := r.refusal(ctx, req, "patch", app.Namespace)
	if reply == "" {
		reply = r.rollback(ctx, req, app.Namespace, app.Name, apps.RollbackTarget{Revision: revision, UID: app.UID})
	}
	r.log.Info("command", "chat", u.ChatID, "user", u.UserID, "command", rollbackCommand.word, "button", true)
	r.reply(ctx, u.ChatID, reply, req.rollout)
	return true
}

// appGone answers a [Roll back] button whose app was deleted.
const appGone = "The app of this button was deleted; nothing changed."

func revisionArg(rev int64) string {
	if rev == 0 {
		return ""
	}
	return strconv.FormatInt(rev, 10)
}

func (r *Router) answer(ctx context.Context, u bot.Update, text string) {
	if err := r.cfg.Messenger.AnswerCallback(ctx, u.Callback.ID, text); err != nil {
		r.log.Warn("answer callback", "chat", u.ChatID, "err", err)
	}
}
