package conversations

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dlclark/regexp2"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/apps"
)

// Flow is a conversation as data: its states and where it begins.
type Flow struct {
	// Name is how Start names the flow; Command is how a user starts it.
	Name, Command string
	// Begin picks the first state, from the presets in c.
	Begin func(c *Conv) string
	// States by name.
	States map[string]*State
}

// State is one question of a flow.
type State struct {
	// Prompt renders the question. It may end the conversation with End (for
	// example when the user may not do what the flow is for).
	Prompt func(ctx context.Context, c *Conv) (Prompt, error)
	// Pattern is what typed text must match (a regexp2 pattern; a named group
	// "v" is the value, else the whole text); nil accepts buttons only.
	Pattern *regexp2.Regexp
	// Hint says how to write the answer when typed text does not match.
	Hint string
	// Accept validates an answer (typed or the pressed button's value) and
	// returns the next state, or "" when the flow is done (after c.Done).
	// Retry asks again; End ends the conversation with a message.
	Accept func(ctx context.Context, c *Conv, answer string) (next string, err error)
}

// Prompt is a question: Telegram HTML and optional buttons.
type Prompt struct {
	Text    string     `json:"t"`
	Buttons [][]Choice `json:"b,omitempty"`
}

// Choice is one button: its label and the answer it gives.
type Choice struct {
	Label string `json:"l"`
	Value string `json:"v"`
}

// userError is a message for the user about their answer or the flow.
type userError struct {
	msg string
	end bool
}

func (e *userError) Error() string { return e.msg }

// Retry rejects an answer: the user is told msg (HTML) and asked again.
func Retry(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// End ends the conversation with msg (HTML); nothing further happens.
func End(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...), end: true}
}

// Conv is what a flow's functions see of the conversation in progress.
type Conv struct {
	e      *Engine
	s      *session
	update bot.Update
	done   string
	follow *progress.Rollout
	// report: done goes out as a message of its own, not over the menu.
	report bool
}

// Get returns a value collected (or preset) earlier, "" if none.
func (c *Conv) Get(key string) string { return c.s.Data[key] }

// Set records a value for later states.
func (c *Conv) Set(key, value string) {
	if c.s.Data == nil {
		c.s.Data = map[string]string{}
	}
	c.s.Data[key] = value
}

// Namespace is the namespace the conversation works in.
func (c *Conv) Namespace() string { return c.Get(keyNamespace) }

// ChatID is the chat the conversation is in.
func (c *Conv) ChatID() int64 { return c.s.ChatID }

// Apps reaches TeleApps.
func (c *Conv) Apps() Apps { return c.e.cfg.Apps }

// Done sets the message that ends the flow (HTML).
func (c *Conv) Done(format string, args ...any) { c.done = fmt.Sprintf(format, args...) }

// Report ends the flow with text (HTML) in a message of its own, which may
// be longer than one message (the transport splits it), leaving the menu
// with the answer it was given.
func (c *Conv) Report(text string) {
	c.done, c.report = text, true
}

// Follow ends the flow with the reply that a rollout ro from image was
// started, and has that reply follow the rollout.
func (c *Conv) Follow(ro progress.Rollout, was string) {
	c.Done("%s", progress.Started(ro, was))
	c.follow = &ro
}

// Identity is who the user is to Kubernetes.
func (c *Conv) Identity() access.Identity { return identity.For(c.s.UserID, c.s.ChatID) }

// Audit describes the change the flow makes for operator/apps; the update
// that confirmed it makes a redelivered press recognisable.
func (c *Conv) Audit() apps.Audit {
	return identity.Audit(c.s.UserID, c.s.Username, c.e.flows[c.s.Flow].Command+" (conversation)", c.update.ID)
}

// Allow returns nil when the user may do verb on TeleApps in the
// conversation's namespace, and otherwise an End that names the missing
// permission.
func (c *Conv) Allow(ctx context.Context, verb string) error {
	return c.AllowIn(ctx, verb, c.Namespace())
}

// AllowIn is Allow for another namespace.
func (c *Conv) AllowIn(ctx context.Context, verb, namespace string) error {
	return c.allowed(ctx, namespace, access.OnTeleApps(verb))
}

// allowed is Allow for any permissions, asked in order.
func (c *Conv) allowed(ctx context.Context, namespace string, need ...access.Permission) error {
	for _, p := range need {
		err := c.e.cfg.Authorizer.Allowed(ctx, c.Identity(), p, namespace)
		var denied *access.DeniedError
		switch {
		case err == nil:
			continue
		case errors.As(err, &denied):
			return End("%s", identity.Refusal(denied))
		default:
			return fmt.Errorf("authorize %s %s in %s: %w", p.Verb, p.Resource, namespace, err)
		}
	}
	return nil
}

// The Telegram HTML helpers, short for the many replies written here.
var (
	esc  = bot.EscapeHTML
	bold = bot.Bold
	code = bot.Code
)

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
