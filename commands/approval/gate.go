// Package approval is the chat side of two-person approval. The Gate wraps
// the chat's app operations: in a namespace labelled
// teleop.io/approval=required it holds /delete and /scale to 0 (and every
// operation wrapped the same way) as a request on the TeleApp, posts it with
// [Approve] and [Reject] buttons, and applies it once another user who may
// `approve` teleapps there presses Approve. kubectl is not affected: only
// the chat's operations go through the Gate.
package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/approvals"
	"github.com/teleop/teleop/operator/apps"
)

// Apps are the chat's operations the Gate wraps; *apps.Client provides them.
type Apps interface {
	Create(ctx context.Context, namespace, name, image string, replicas int32, notifyChats []string, a apps.Audit) (*v1alpha1.TeleApp, error)
	Get(ctx context.Context, namespace, name string) (*v1alpha1.TeleApp, error)
	List(ctx context.Context, namespace string) ([]v1alpha1.TeleApp, error)
	Scale(ctx context.Context, namespace, name string, ch apps.ReplicaChange, a apps.Audit) (from, to int32, err error)
	Delete(ctx context.Context, namespace, name string, a apps.Audit) error
	SetImage(ctx context.Context, namespace, name, image string, a apps.Audit) (before, after *v1alpha1.TeleApp, err error)
	Restart(ctx context.Context, namespace, name string, at time.Time, a apps.Audit) (*v1alpha1.TeleApp, error)
	Rollback(ctx context.Context, namespace, name string, target apps.RollbackTarget, a apps.Audit) (before, after *v1alpha1.TeleApp, to v1alpha1.Revision, err error)
}

// Authorizer asks whether a user may approve; *access.Authorizer provides it.
type Authorizer interface {
	Allowed(ctx context.Context, id access.Identity, p access.Permission, namespace string) error
}

// Config is what a Gate needs.
type Config struct {
	// Apps are the operations wrapped; held ones are applied through them.
	Apps      Apps
	Requests  *approvals.Requests
	Access    Authorizer
	Messenger bot.Messenger
	// Timeout is how long a request waits; approvals.DefaultTimeout when zero.
	Timeout time.Duration
	// SweepInterval is how often Run closes expired requests; a thirtieth
	// of Timeout (at most a minute) when zero.
	SweepInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Gate is the chat's Apps with two-person approval in front of the
// destructive operations. Create, Get, List and Restart pass through.
type Gate struct {
	Apps
	cfg Config
	log *slog.Logger
}

// New returns a Gate.
func New(cfg Config) *Gate {
	if cfg.Timeout <= 0 {
		cfg.Timeout = approvals.DefaultTimeout
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = min(cfg.Timeout/30, time.Minute)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Gate{Apps: cfg.Apps, cfg: cfg, log: cfg.Logger.With("component", "approval")}
}

// An operation is what the Gate can hold: how the request names it (HTML)
// and how it is applied once approved. A repeated apply with the same audit
// must change nothing (the RequestID rule of operator/apps), so a change
// approved just before a restart can be finished after it.
type operation struct {
	describe func(name string, args map[string]string) string
	apply    func(ctx context.Context, inner Apps, namespace, name string, args map[string]string, a apps.Audit) error
}

// operations are the operations the Gate can hold, by name.
var operations = map[string]operation{
	"scale": {
		describe: func(name string, args map[string]string) string {
			return fmt.Sprintf("scale %s to %s replicas", bot.Bold(name), bot.EscapeHTML(args["replicas"]))
		},
		apply: func(ctx context.Context, inner Apps, namespace, name string, args map[string]string, a apps.Audit) error {
			n, err := strconv.ParseInt(args["replicas"], 10, 32)
			if err != nil {
				return fmt.Errorf("replicas %q: %w", args["replicas"], err)
			}
			_, _, err = inner.Scale(ctx, namespace, name, apps.ReplicaChange{Set: ptr.To(int32(n))}, a)
			return done(err)
		},
	},
	"deploy": {
		describe: func(name string, args map[string]string) string {
			return fmt.Sprintf("deploy %s to %s", bot.Code(args["image"]), bot.Bold(name))
		},
		apply: func(ctx context.Context, inner Apps, namespace, name string, args map[string]string, a apps.Audit) error {
			_, _, err := inner.SetImage(ctx, namespace, name, args["image"], a)
			return done(err)
		},
	},
	"rollback": {
		describe: func(name string, args map[string]string) string {
			if args["revision"] == "0" {
				return "roll " + bot.Bold(name) + " back to its previous image"
			}
			return fmt.Sprintf("roll %s back to revision %s", bot.Bold(name), bot.EscapeHTML(args["revision"]))
		},
		apply: func(ctx context.Context, inner Apps, namespace, name string, args map[string]string, a apps.Audit) error {
			revision, err := strconv.ParseInt(args["revision"], 10, 64)
			if err != nil {
				return fmt.Errorf("revision %q: %w", args["revision"], err)
			}
			_, _, _, err = inner.Rollback(ctx, namespace, name, apps.RollbackTarget{Revision: revision}, a)
			return done(err)
		},
	},
	"delete": {
		describe: func(name string, _ map[string]string) string { return "delete " + bot.Bold(name) },
		apply: func(ctx context.Context, inner Apps, namespace, name string, _ map[string]string, a apps.Audit) error {
			if err := inner.Delete(ctx, namespace, name, a); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return nil
		},
	},
}

// done treats a change that is already made as made.
func done(err error) error {
	if errors.Is(err, apps.ErrAlreadyApplied) || errors.Is(err, apps.ErrUnchanged) {
		return nil
	}
	return err
}

// SetImage deploys as the wrapped Apps do, except in a namespace that
// requires two people, where it is held (a *PendingError).
func (g *Gate) SetImage(ctx context.Context, namespace, name, image string, a apps.Audit) (before, after *v1alpha1.TeleApp, err error) {
	if _, err := g.Apps.Get(ctx, namespace, name); err != nil {
		return nil, nil, err
	}
	held, err := g.hold(ctx, namespace, name, "deploy", map[string]string{"image": image}, a)
	if !held {
		return g.Apps.SetImage(ctx, namespace, name, image, a)
	}
	return nil, nil, err
}

// Rollback rolls back as the wrapped Apps do, except in a namespace that
// requires two people, where it is held (a *PendingError).
func (g *Gate) Rollback(ctx context.Context, namespace, name string, target apps.RollbackTarget, a apps.Audit) (before, after *v1alpha1.TeleApp, to v1alpha1.Revision, err error) {
	if _, err := g.Apps.Get(ctx, namespace, name); err != nil {
		return nil, nil, v1alpha1.Revision{}, err
	}
	held, err := g.hold(ctx, namespace, name, "rollback", map[string]string{"revision": strconv.FormatInt(target.Revision, 10)}, a)
	if !held {
		return g.Apps.Rollback(ctx, namespace, name, target, a)
	}
	return nil, nil, v1alpha1.Revision{}, err
}

// Scale scales as the wrapped Apps do, except a scale to 0 in a namespace
// that requires two people, which is held (a *PendingError).
func (g *Gate) Scale(ctx context.Context, namespace, name string, ch apps.ReplicaChange, a apps.Audit) (from, to int32, err error) {
	app, err := g.Apps.Get(ctx, namespace, name)
	if err != nil {
		return 0, 0, err
	}
	from = app.Spec.DesiredReplicas()
	target := int64(from) + int64(ch.Delta)
	if ch.Set != nil {
		target = int64(*ch.Set)
	}
	if target != 0 || from == 0 {
		return g.Apps.Scale(ctx, namespace, name, ch, a)
	}
	held, err := g.hold(ctx, namespace, name, "scale", map[string]string{"replicas": "0"}, a)
	if !held {
		return g.Apps.Scale(ctx, namespace, name, ch, a)
	}
	return from, from, err
}

// Delete deletes as the wrapped Apps do, except in a namespace that
// requires two people, where it is held (a *PendingError).
func (g *Gate) Delete(ctx context.Context, namespace, name string, a apps.Audit) error {
	if _, err := g.Apps.Get(ctx, namespace, name); err != nil {
		return err
	}
	held, err := g.hold(ctx, namespace, name, "delete", nil, a)
	if !held {
		return g.Apps.Delete(ctx, namespace, name, a)
	}
	return err
}

// PendingError says that a change waits for a second person.
type PendingError struct {
	Namespace, Name string
	Request         approvals.Request
	// Busy: it is another change that waits; this one was not taken.
	Busy bool
}

func (e *PendingError) Error() string {
	if e.Busy {
		return fmt.Sprintf("%s/%s: %v (%q)", e.Namespace, e.Name, approvals.ErrBusy, e.Request.Command)
	}
	return fmt.Sprintf("%s/%s: %q waits for approval (request %s)", e.Namespace, e.Name, e.Request.Command, e.Request.ID)
}

// Reply is what the chat says when err held a change for approval (HTML);
// ok is false for any other error.
func Reply(err error) (text string, ok bool) {
	var p *PendingError
	if !errors.As(err, &p) {
		return "", false
	}
	if p.Busy {
		return fmt.Sprintf("⏳ %s already has a change waiting for approval in %s: %s asked by %s. Approve or reject it first; nothing changed.",
			bot.Bold(p.Name), bot.Bold(p.Namespace), bot.Code(p.Request.Command), bot.EscapeHTML(p.Request.Actor)), true
	}
	return fmt.Sprintf("⏳ %s needs a second person in %s: I posted the request. Nothing changes until someone who may approve it does.",
		bot.Code(p.Request.Command), bot.Bold(p.Namespace)), true
}

// hold opens a request for operation when namespace requires two people and
// posts it in the requester's chat. held is false when it does not; then
// the caller applies the operation itself.
func (g *Gate) hold(ctx context.Context, namespace, name, operation string, args map[string]string, a apps.Audit) (held bool, err error) {
	required, err := g.cfg.Requests.Required(ctx, namespace)
	if err != nil || !required {
		return err != nil, err
	}
	who, ok := identity.FromContext(ctx)
	if !ok {
		return true, fmt.Errorf("%s in %s needs approval, but no chat user is asking", a.Command, namespace)
	}
	req, opened, err := g.cfg.Requests.Open(ctx, namespace, name, approvals.Request{
		ID: approvals.NewID(), Operation: operation, Args: args,
		Requester: identity.User(who.UserID), Actor: a.Actor, Command: a.Command, RequestID: a.RequestID,
		Chat: strconv.FormatInt(who.ChatID, 10), Expires: g.cfg.Now().Add(g.cfg.Timeout),
	})
	if errors.Is(err, approvals.ErrBusy) {
		return true, &PendingError{Namespace: namespace, Name: name, Request: req, Busy: true}
	}
	if err != nil {
		return true, err
	}
	if opened {
		if err := g.post(ctx, approvals.Open{Namespace: namespace, Name: name, Request: req}, who.ChatID); err != nil {
			return true, err
		}
	}
	return true, &PendingError{Namespace: namespace, Name: name, Request: req}
}

// post shows the request with its buttons and remembers the message, so the
// outcome can be written on it even after a restart.
func (g *Gate) post(ctx context.Context, o approvals.Open, chatID int64) error {
	namespace, name, req := o.Namespace, o.Name, o.Request
	text := summary(o) + fmt.Sprintf("\nSomeone else who may approve teleapps in %s: press Approve within %s.",
		bot.Bold(namespace), duration.HumanDuration(g.cfg.Timeout))
	messageID, err := g.cfg.Messenger.Send(ctx, bot.Reply{ChatID: chatID, Text: text, Buttons: [][]bot.Button{{
		{Text: "✅ Approve", Data: buttonData(req.ID, true)}, {Text: "✖️ Reject", Data: buttonData(req.ID, false)},
	}}})
	if err != nil {
		// Nobody could press a button that was never shown: withdraw it.
		_, rejectErr := g.cfg.Requests.Reject(ctx, namespace, name, req.ID, "teleop (the request could not be posted)")
		return errors.Join(fmt.Errorf("post approval request %s: %w", req.ID, err), rejectErr)
	}
	g.log.Info("approval requested", "namespace", namespace, "name", name, "request", req.ID, "requester", req.Requester, "operation", req.Operation)
	if err := g.cfg.Requests.Posted(ctx, namespace, name, req.ID, messageID); err != nil {
		g.log.Warn("could not remember the approval message", "request", req.ID, "err", err)
	}
	return nil
}

// summary is the head of a request's message: what, where, who asked.
func summary(o approvals.Open) string {
	what := bot.EscapeHTML(o.Request.Operation) + " " + bot.Bold(o.Name)
	if op, known := operations[o.Request.Operation]; known {
		what = op.describe(o.Name, o.Request.Args)
	}
	return fmt.Sprintf("🔐 <b>Approval needed</b> in %s: %s asks to %s (%s).",
		bot.Bold(o.Namespace), bot.EscapeHTML(o.Request.Actor), what, bot.Code(o.Request.Command))
}

// Buttons' callback data: "ap:<request id>:a" (approve) or ":r" (reject).
const buttonPrefix = "ap:"

func buttonData(id string, approve bool) string {
	if approve {
		return buttonPrefix + id + ":a"
	}
	return buttonPrefix + id + ":r"
}

// parseButton reads callback data; ours is false for data that is not the
// Gate's, ok false for data that is but is malformed.
func parseButton(data string) (id string, approve, ours, ok bool) {
	rest, ours := strings.CutPrefix(data, buttonPrefix)
	if !ours {
		return "", false, false, false
	}
	id, choice, found := strings.Cut(rest, ":")
	if !found || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" || (choice != "a" && choice != "r") {
		return "", false, true, false
	}
	return id, choice == "a", true, true
}

// Replies to button presses (short: they show as a toast).
const (
	msgNotOpen     = "This request is no longer open."
	msgOwnRequest  = "You asked for this change; someone else must approve it."
	msgTryAgain    = "Something went wrong on my side; please press again in a moment."
	msgApproved    = "Approved."
	msgRejected    = "Rejected; nothing changed."
	msgExpiredNote = "This request has expired; nothing changed."
)

// HandlePress decides on a press of an [Approve] or [Reject] button and
// answers it; it returns false for buttons that are not the Gate's.
func (g *Gate) HandlePress(ctx context.Context, u bot.Update) bool {
	id, approve, ours, ok := parseButton(u.Callback.Data)
	if !ours {
		return false
	}
	answer := msgNotOpen
	if ok {
		answer = g.decide(ctx, u, id, approve)
	}
	if err := g.cfg.Messenger.AnswerCallback(ctx, u.Callback.ID, answer); err != nil {
		g.log.Warn("answer approval press", "chat", u.ChatID, "err", err)
	}
	return true
}

// decide approves or rejects request id for the presser of u, and returns
// what to answer them. Approving needs another user than the requester,
// with the approve verb; rejecting needs the verb too, unless the requester
// withdraws their own request.
func (g *Gate) decide(ctx context.Context, u bot.Update, id string, approve bool) string {
	open, err := g.cfg.Requests.Find(ctx, id)
	if errors.Is(err, approvals.ErrNotOpen) {
		return msgNotOpen
	}
	if err != nil {
		g.log.Error("find approval request", "request", id, "err", err)
		return msgTryAgain
	}
	presser := identity.For(u.UserID, u.ChatID)
	who := identity.Requester{UserID: u.UserID, ChatID: u.ChatID, Username: u.Username}
	own := presser.User == open.Request.Requester
	if approve && own {
		g.log.Info("approval refused", "request", id, "user", presser.User, "why", "own request")
		return msgOwnRequest
	}
	if approve || !own {
		if refusal := g.refusal(ctx, presser, open.Namespace, id); refusal != "" {
			return refusal
		}
	}
	if !approve {
		return g.reject(ctx, open, who.Actor(), u.MessageID)
	}
	approved, err := g.cfg.Requests.Approve(ctx, open.Namespace, open.Name, id, who.Actor())
	switch {
	case errors.Is(err, approvals.ErrExpired):
		g.note(ctx, open, u.MessageID, g.expiredNote())
		return msgExpiredNote
	case errors.Is(err, approvals.ErrNotOpen):
		return msgNotOpen
	case err != nil:
		g.log.Error("approve", "request", id, "err", err)
		return msgTryAgain
	}
	g.log.Info("approved", "namespace", open.Namespace, "name", open.Name, "request", id, "approver", presser.User)
	open.Request = approved
	outcome, _ := g.apply(ctx, open)
	g.note(ctx, open, u.MessageID, outcome)
	return msgApproved
}

func (g *Gate) reject(ctx context.Context, open approvals.Open, who string, messageID int) string {
	_, err := g.cfg.Requests.Reject(ctx, open.Namespace, open.Name, open.Request.ID, who)
	switch {
	case errors.Is(err, approvals.ErrNotOpen), apierrors.IsNotFound(err):
		return msgNotOpen
	case err != nil:
		g.log.Error("reject", "request", open.Request.ID, "err", err)
		return msgTryAgain
	}
	g.log.Info("rejected", "namespace", open.Namespace, "name", open.Name, "request", open.Request.ID, "by", who)
	g.note(ctx, open, messageID, "✖️ Rejected by "+bot.EscapeHTML(who)+"; nothing changed.")
	return msgRejected
}

// refusal is "" when id may approve in namespace, else the answer saying why not.
func (g *Gate) refusal(ctx context.Context, id access.Identity, namespace, request string) string {
	err := g.cfg.Access.Allowed(ctx, id, access.OnTeleApps(access.VerbApprove), namespace)
	var denied *access.DeniedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &denied):
		g.log.Info("approval refused", "request", request, "user", id.User, "why", "no approve verb")
		return "⛔ " + strings.ToUpper(denied.Error()[:1]) + denied.Error()[1:] + "."
	default:
		g.log.Error("authorize approval", "request", request, "user", id.User, "err", err)
		return msgTryAgain
	}
}

// note writes the outcome over the request's message, without its buttons.
// messageID is the pressed message, or 0 to use the one the request records.
func (g *Gate) note(ctx context.Context, o approvals.Open, messageID int, outcome string) {
	req := o.Request
	chatID, err := strconv.ParseInt(req.Chat, 10, 64)
	if messageID == 0 {
		messageID = req.Message
	}
	if err != nil || messageID == 0 {
		return
	}
	if _, err := g.cfg.Messenger.Send(ctx, bot.Reply{ChatID: chatID, EditMessageID: messageID, Text: summary(o) + "\n" + outcome}); err != nil {
		g.log.Warn("write the approval outcome", "request", req.ID, "err", err)
	}
}

func (g *Gate) expiredNote() string {
	return fmt.Sprintf("⌛ Nobody approved it within %s; nothing changed.", duration.HumanDuration(g.cfg.Timeout))
}

// resumeAfter is how long an approved request may stay open before the
// sweeper takes it for one whose approver stopped (a restart) and finishes it.
const resumeAfter = time.Minute

// Run closes expired requests, and finishes approved ones a restart
// interrupted, every SweepInterval until ctx is done. Only the leader runs it.
func (g *Gate) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.Sweep(ctx); err != nil {
				g.log.Error("sweep approval requests", "err", err)
			}
		}
	}
}

// Sweep does one round of Run now.
func (g *Gate) Sweep(ctx context.Context) error {
	open, err := g.cfg.Requests.All(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range open {
		req := o.Request
		switch {
		case req.State == approvals.Approved && g.cfg.Now().Sub(req.Approved) > resumeAfter:
			if outcome, closed := g.apply(ctx, o); closed {
				g.note(ctx, o, 0, outcome)
			}
		case req.State == approvals.Pending && !g.cfg.Now().Before(req.Expires):
			err := g.cfg.Requests.Expire(ctx, o.Namespace, o.Name, req.ID)
			if errors.Is(err, approvals.ErrNotOpen) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			g.log.Info("approval expired", "namespace", o.Namespace, "name", o.Name, "request", req.ID)
			g.note(ctx, o, 0, g.expiredNote())
		}
	}
	return errors.Join(errs...)
}
