// Package identity maps Telegram users to Kubernetes: who a chat user is to
// the API server, and how their changes are recorded. The one-shot commands
// and the conversations both use it, so a change is audited the same way
// whichever path made it, and operator/ stays free of Telegram.
package identity

import (
	"context"
	"strconv"
	"strings"

	"github.com/teleop/teleop/bot"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/apps"
)

// UsersGroup holds every Telegram user.
const UsersGroup = "telegram:users"

// For is the identity of Telegram user userID writing in chat chatID: user
// "telegram:<userID>" in groups "telegram:chat:<chatID>" and "telegram:users".
func For(userID, chatID int64) access.Identity {
	return access.Identity{
		User:   User(userID),
		Groups: []string{"telegram:chat:" + strconv.FormatInt(chatID, 10), UsersGroup},
	}
}

// User is the Kubernetes user name of Telegram user userID, the form
// --admins are given in.
func User(userID int64) string {
	return "telegram:" + strconv.FormatInt(userID, 10)
}

// Audit records who made a change with which command. The update ID makes a
// redelivered update recognisable, so the change is never applied twice.
func Audit(userID int64, username, command string, updateID int64) apps.Audit {
	return apps.Audit{
		Actor:     actor(userID, username),
		Command:   command,
		RequestID: "telegram-update-" + strconv.FormatInt(updateID, 10),
	}
}

// Refusal is the reply to a user the API server refused: what permission is
// missing, in Telegram HTML. The commands and the conversations both give it.
func Refusal(denied *access.DeniedError) string {
	text := denied.Error()
	if text != "" {
		text = strings.ToUpper(text[:1]) + text[1:]
	}
	return "⛔ " + bot.EscapeHTML(text) + "."
}

func actor(userID int64, username string) string {
	a := User(userID)
	if username != "" {
		a += " (@" + username + ")"
	}
	return a
}

// Requester is the chat user behind a request being handled, and where they wrote.
type Requester struct {
	UserID, ChatID int64
	Username       string
}

type requesterKey struct{}

// NewContext returns ctx carrying who is asking, for code that acts on their
// behalf deeper down (the approval gate asks a second person in their chat).
func NewContext(ctx context.Context, r Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, r)
}

// FromContext returns who is asking, if ctx carries it.
func FromContext(ctx context.Context) (Requester, bool) {
	r, ok := ctx.Value(requesterKey{}).(Requester)
	return r, ok
}

// Actor is how a change by this user is recorded: "telegram:<id> (@name)".
func (r Requester) Actor() string {
	return actor(r.UserID, r.Username)
}
