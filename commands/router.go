// Package commands turns chat messages into actions on TeleApps: a regexp2
// grammar of one-shot commands, each pattern beside its handler, and the
// Router that sends everything else to the conversations engine. Every read
// and write is authorised for the chat user's Kubernetes identity first.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"k8s.io/utils/clock"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/approval"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/commands/report"
	"github.com/teleop/teleop/operator/access"
)

// Apps is what the commands need of TeleApps: the chat's operations, which
// the approval Gate wraps (and *apps.Client provides unwrapped).
type Apps interface {
	approval.Apps
}

// Authorizer decides whether an identity may do something in a namespace;
// *access.Authorizer provides it.
type Authorizer interface {
	Allowed(ctx context.Context, id access.Identity, p access.Permission, namespace string) error
}

// Inspector reads what /events and /logs show; *inspect.Reader provides it.
type Inspector interface {
	report.Reader
}

// Namespaces keeps each chat's namespace ("default" until set); its errors
// name the chat, and Set refuses a namespace the chat may not use with a
// *chats.NotAllowedError. *chats.Chats provides it.
type Namespaces interface {
	Get(ctx context.Context, chatID int64) (string, error)
	Set(ctx context.Context, chatID int64, namespace string) error
}

// Conversations runs multi-step dialogues; *conversations.Engine provides it.
type Conversations interface {
	Start(ctx context.Context, flow string, u bot.Update, preset map[string]string) error
	Handle(ctx context.Context, u bot.Update) (handled bool, err error)
	Cancel(ctx context.Context, chatID, userID int64) (wasOpen bool, err error)
	Open(ctx context.Context, chatID, userID int64) (flow string, ok bool, err error)
}

// Progress follows a rollout started from the chat by editing the reply that
// announced it, until the rollout ends or the tracker stops following it (it
// bounds how many it follows, and stops them all on shutdown);
// *progress.Tracker provides it.
type Progress interface {
	Track(ctx context.Context, chatID int64, messageID int, ro progress.Rollout)
}

// ButtonHandler answers presses of its own buttons outside conversations
// (the approval Gate's); it returns false for buttons that are not its own.
type ButtonHandler interface {
	HandlePress(ctx context.Context, u bot.Update) bool
}

// Config is what a Router needs.
type Config struct {
	// BotName is the bot's username without "@": "/list@otherbot" is not for
	// us. Empty accepts any suffix (the console has no name).
	BotName       string
	Apps          Apps
	Access        Authorizer
	Namespaces    Namespaces
	Conversations Conversations
	Messenger     bot.Messenger
	Inspect       Inspector
	// ButtonHandlers are asked, in order, about presses before the conversations.
	ButtonHandlers []ButtonHandler
	// Metrics, when set, count the commands.
	Metrics *Metrics
	// Progress, when set, edits the replies to /create and /scale as the
	// rollout moves on.
	Progress Progress
	// Index, the TeleApp informer's with UIDIndex, finds the app of a [Roll
	// back] button a stuck /deploy offers; without it none is offered.
	Index AppIndex
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Clock paces the chatter hints; the real clock when nil.
	Clock clock.PassiveClock
}

// Router is the bot's Handler: commands are answered here, conversations are
// handed to the engine.
type Router struct {
	cfg     Config
	grammar *grammar
	hints   *hintLimiter
	log     *slog.Logger
}

// NewRouter returns a Router, or an error naming what cfg lacks.
func NewRouter(cfg Config) (*Router, error) {
	var missing []error
	for name, present := range map[string]bool{
		"Apps": cfg.Apps != nil, "Access": cfg.Access != nil, "Namespaces": cfg.Namespaces != nil,
		"Conversations": cfg.Conversations != nil, "Messenger": cfg.Messenger != nil, "Inspect": cfg.Inspect != nil,
	} {
		if !present {
			missing = append(missing, fmt.Errorf("commands: Config.%s is required", name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Router{cfg: cfg, grammar: newGrammar(allCommands...), hints: newHintLimiter(cfg.Clock), log: log}, nil
}

// request is one matched command being handled.
type request struct {
	update bot.Update
	cmd    *command
	args   map[string]string
	// identity is who the chat user is to Kubernetes.
	identity access.Identity
	// rollout, set by a handler that started one, is followed in its reply.
	rollout *progress.Rollout
}

// HandleUpdate answers a message or a button press. It never panics on input
// and replies to every bad command with what was wrong and how to write it.
func (r *Router) HandleUpdate(ctx context.Context, u bot.Update) {
	ctx = identity.NewContext(ctx, identity.Requester{UserID: u.UserID, ChatID: u.ChatID, Username: u.Username})
	switch {
	case u.Callback != nil:
		r.handleButton(ctx, u)
	case len(u.Text) > MaxMessageLength && utf8.RuneCountInString(u.Text) > MaxMessageLength:
		r.log.Info("ignored over-long message", "chat", u.ChatID, "user", u.UserID, "characters", utf8.RuneCountInString(u.Text))
		if isPrivate(u) && r.hints.allow(u.ChatID) {
			r.send(ctx, u.ChatID, "That message is too long for me. Commands are short: send /help to see them.")
		}
	default:
		r.handleText(ctx, u)
	}
}

func (r *Router) handleButton(ctx context.Context, u bot.Update) {
	for _, b := range r.cfg.ButtonHandlers {
		if b.HandlePress(ctx, u) {
			return
		}
	}
	handled, err := r.cfg.Conversations.Handle(ctx, u)
	if err != nil {
		r.log.Error("button press failed", "chat", u.ChatID, "user", u.UserID, "err", err)
	}
	if handled || (r.cfg.Index != nil && r.pressUndo(ctx, u)) {
		return
	}
	r.answer(ctx, u, "This menu has expired.")
}

func (r *Router) handleText(ctx context.Context, u bot.Update) {
	p := r.grammar.parse(u.Text, r.cfg.BotName)
	switch p.outcome {
	case otherBot:
		return
	case notCommand:
		r.handleChatter(ctx, u)
		return
	case unknownCommand:
		r.cfg.Metrics.count(p.word, p.outcome)
		r.send(ctx, u.ChatID, fmt.Sprintf("I don't know %s. Send /help to see what I can do.", code(p.word)))
		return
	}
	if p.word != cancelWord {
		r.dropConversation(ctx, u)
	}
	req := &request{update: u, cmd: p.cmd, args: p.args, identity: identityOf(u)}
	var reply string
	if p.outcome == badUsage {
		reply = req.usage(fmt.Sprintf("%s takes %s.", code("/"+p.cmd.word), p.cmd.takes))
	} else {
		reply = p.cmd.run(ctx, r, req)
	}
	r.log.Info("command", "chat", u.ChatID, "user", u.UserID, "command", p.word, "matched", p.outcome == matched)
	r.cfg.Metrics.count(p.word, p.outcome)
	if reply == "" {
		return
	}
	r.reply(ctx, u.ChatID, reply, req.rollout)
}

// reply sends text, which follows the rollout ro, if any.
func (r *Router) reply(ctx context.Context, chatID int64, text string, ro *progress.Rollout) {
	messageID := r.send(ctx, chatID, text)
	if ro != nil && messageID != 0 && r.cfg.Progress != nil {
		// The update's deadline ends its context; the rollout goes on.
		go r.cfg.Progress.Track(context.WithoutCancel(ctx), chatID, messageID, *ro)
	}
}

// handleChatter gives plain text to an open conversation; in a private chat
// text nobody expects gets a hint (at most one per HintInterval), in a group
// it is none of our business.
func (r *Router) handleChatter(ctx context.Context, u bot.Update) {
	handled, err := r.cfg.Conversations.Handle(ctx, u)
	if err != nil {
		r.log.Error("conversation step failed", "chat", u.ChatID, "user", u.UserID, "err", err)
		r.send(ctx, u.ChatID, somethingWentWrong)
		return
	}
	if !handled && isPrivate(u) && r.hints.allow(u.ChatID) {
		r.send(ctx, u.ChatID, "I understand commands. Send /help to see them.")
	}
}

// dropConversation ends the user's open conversation, if any, and says so:
// a new command means the user moved on.
func (r *Router) dropConversation(ctx context.Context, u bot.Update) {
	flow, open, err := r.cfg.Conversations.Open(ctx, u.ChatID, u.UserID)
	if err == nil && open {
		_, err = r.cfg.Conversations.Cancel(ctx, u.ChatID, u.UserID)
	}
	switch {
	case err != nil:
		r.log.Error("drop conversation", "chat", u.ChatID, "user", u.UserID, "err", err)
	case open:
		r.send(ctx, u.ChatID, fmt.Sprintf("(I dropped your unfinished %s.)", code("/"+flow)))
	}
}

// startFlow hands the user over to a conversation; the engine replies.
func (r *Router) startFlow(ctx context.Context, req *request, flow string, preset map[string]string) string {
	if err := r.cfg.Conversations.Start(ctx, flow, req.update, preset); err != nil {
		r.log.Error("start conversation", "flow", flow, "chat", req.update.ChatID, "user", req.update.UserID, "err", err)
		return somethingWentWrong
	}
	return ""
}

func (r *Router) send(ctx context.Context, chatID int64, text string) (messageID int) {
	messageID, err := r.cfg.Messenger.Send(ctx, bot.Reply{ChatID: chatID, Text: text})
	if err != nil {
		r.log.Error("send reply", "chat", chatID, "err", err)
	}
	return messageID
}

func isPrivate(u bot.Update) bool { return u.ChatType == "private" }

func identityOf(u bot.Update) access.Identity { return identity.For(u.UserID, u.ChatID) }
