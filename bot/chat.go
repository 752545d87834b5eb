// Package bot is the chat transport: it turns Telegram updates into
// transport-neutral Updates for a Handler and delivers Replies within
// Telegram's limits. Only this package imports the Telegram library; nothing
// here knows about Kubernetes.
package bot

import (
	"context"
	"time"
)

// Update is one thing a user did in a chat: wrote a message or pressed a button.
type Update struct {
	// ID is Telegram's update_id: unique per bot and increasing.
	ID int64
	// ChatID identifies the chat; groups have negative IDs.
	ChatID int64
	// ChatType is "private", "group", "supergroup" or "channel".
	ChatType string
	// UserID and Username identify who wrote or pressed.
	UserID   int64
	Username string
	// MessageID is the message written, or the message whose button was pressed.
	MessageID int
	// Text is the message text; empty for a button press.
	Text string
	// Callback is set when a button was pressed.
	Callback *Callback
	// Received is when the transport got the update (zero: unknown). The
	// inbound limits count from it, so a backlog handled late is judged by
	// when it came, not by when its turn came.
	Received time.Time
}

// Callback is an inline-keyboard button press.
type Callback struct {
	// ID must be answered with Messenger.AnswerCallback so the button stops spinning.
	ID string
	// Data is the button's callback_data (at most 64 bytes).
	Data string
}

// Reply is a message to send to a chat, or an edit of one sent before.
type Reply struct {
	ChatID int64
	// EditMessageID, when non-zero, edits that message instead of sending a new one.
	EditMessageID int
	// Text is Telegram HTML: escape user-supplied parts with EscapeHTML, which
	// also replaces the control characters Telegram refuses.
	Text string
	// Buttons is an inline keyboard, row by row; nil for none.
	Buttons [][]Button
	// Priority places it in the outbox: a reply (the zero value) goes before
	// notices, which go before progress edits.
	Priority Priority
}

// Button is one inline-keyboard button.
type Button struct {
	Text string
	// Data is sent back in Callback.Data when pressed; at most 64 bytes.
	Data string
}

// Handler reacts to updates; the command engine implements it.
type Handler interface {
	HandleUpdate(ctx context.Context, u Update)
}

// Admitter is a Handler that may refuse an update before the transport
// accepts it (the inbound limits). The Telegram transport asks Admit as
// updates arrive: a refused update is confirmed to Telegram without any
// write of the update checkpoint (losing it in a crash loses nothing that
// would have run), so a flood costs writes only for what is let through.
// Updates admitted go to HandleAdmitted; HandleUpdate admits and handles.
type Admitter interface {
	Handler
	Admit(ctx context.Context, u Update) bool
	HandleAdmitted(ctx context.Context, u Update)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, u Update)

// HandleUpdate calls f.
func (f HandlerFunc) HandleUpdate(ctx context.Context, u Update) { f(ctx, u) }

// Messenger sends and edits messages. The Telegram transport implements it
// through its rate-limited sender; the console prints to a terminal.
type Messenger interface {
	// Send sends r (or edits r.EditMessageID) and returns the message's ID.
	Send(ctx context.Context, r Reply) (messageID int, err error)
	// AnswerCallback answers a button press, with an optional short toast text.
	AnswerCallback(ctx context.Context, callbackID, text string) error
}
