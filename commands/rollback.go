package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// ButtonStore keeps what a [Roll back] button stands for, as callback data
// is too short for it; *store.Store provides it.
type ButtonStore interface {
	Get(ctx context.Context, bucket, key string) ([]byte, bool, error)
	Put(ctx context.Context, bucket, key string, value []byte, ttl time.Duration) error
}

const (
	// undoBucket is the store bucket of [Roll back] buttons, keyed by chat
	// and the update that deployed.
	undoBucket = "undo"
	// undoPrefix starts the callback data of a [Roll back] button.
	undoPrefix = "rb:"
	// undoTTL is how long a [Roll back] button works.
	undoTTL = 24 * time.Hour
)

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
	case err != nil:
		return r.failure(req, err, namespace, name)
	}
	req.rollout = &progress.Rollout{
		Op: progress.OperationRollback, Namespace: namespace, Name: name,
		To: after.Spec.DesiredReplicas(), Image: to.Image, Revision: to.Revision, Generation: after.Generation,
	}
	return progress.Started(*req.rollout, before.Spec.Image)
}

// undo is what a [Roll back] button stands for.
type undo struct {
	Namespace string `json:"ns"`
	Name      string `json:"name"`
	// Revision is the one running before the deploy; 0 when the history
	// did not hold it yet, which means the previous image.
	Revision int64 `json:"rev,omitempty"`
}

// undoButton keeps, for a deploy of namespace/name from before, a [Roll
// back] button that the rollout's reply offers should it get stuck. No
// store, no button; a failure to keep it costs only the button.
func (r *Router) undoButton(ctx context.Context, req *request, namespace, name string, before *v1alpha1.TeleApp) *bot.Button {
	if r.cfg.Buttons == nil {
		return nil
	}
	u := undo{Namespace: namespace, Name: name}
	if latest := before.Status.LatestRevision(); latest != nil && latest.Image == before.Spec.Image {
		u.Revision = latest.Revision
	}
	value, err := json.Marshal(u)
	if err == nil {
		err = r.cfg.Buttons.Put(ctx, undoBucket, undoKey(req.update.ChatID, req.update.ID), value, undoTTL)
	}
	if err != nil {
		r.log.Warn("keep roll back button", "chat", req.update.ChatID, "teleapp", namespace+"/"+name, "err", err)
		return nil
	}
	return &bot.Button{Text: "↩️ Roll back", Data: undoPrefix + strconv.FormatInt(req.update.ID, 10)}
}

func undoKey(chatID, updateID int64) string {
	return strconv.FormatInt(chatID, 10) + ":" + strconv.FormatInt(updateID, 10)
}

// pressUndo rolls back for a press of a [Roll back] button, as /rollback
// would for the user who pressed it: the same permission check, the same
// reply, followed live. The button names the revision that ran before the
// deploy, so a second press finds it running and changes nothing. It
// reports whether the press was such a button.
func (r *Router) pressUndo(ctx context.Context, u bot.Update) bool {
	id, ok := strings.CutPrefix(u.Callback.Data, undoPrefix)
	if !ok {
		return false
	}
	raw, found, err := r.cfg.Buttons.Get(ctx, undoBucket, undoKey(u.ChatID, parseID(id)))
	var target undo
	if err == nil && found {
		err = json.Unmarshal(raw, &target)
	}
	switch {
	case err != nil:
		r.log.Error("read roll back button", "chat", u.ChatID, "err", err)
		r.answer(ctx, u, somethingWentWrong)
		return true
	case !found:
		r.answer(ctx, u, "This button has expired; /rollback still works.")
		return true
	}
	r.answer(ctx, u, "")
	u.Text = strings.TrimSpace(fmt.Sprintf("/rollback %s/%s %s", target.Namespace, target.Name, revisionArg(target.Revision)))
	req := &request{update: u, cmd: rollbackCommand, identity: identityOf(u)}
	reply := r.refusal(ctx, req, "patch", target.Namespace)
	if reply == "" {
		reply = r.rollback(ctx, req, target.Namespace, target.Name, apps.RollbackTarget{Revision: target.Revision})
	}
	r.log.Info("command", "chat", u.ChatID, "user", u.UserID, "command", rollbackCommand.word, "button", true)
	r.reply(ctx, u.ChatID, reply, req.rollout)
	return true
}

func parseID(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1 // no update has it: the press finds nothing
	}
	return n
}

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
