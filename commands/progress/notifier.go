package progress

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/announce"
)

// NewNotifier delivers announcements through the bot's Messenger as notices
// (behind replies; joined when several queue for one chat), worded by
// FormatNotice.
func NewNotifier(messenger bot.Messenger) announce.Notifier {
	return notifier{messenger: messenger}
}

type notifier struct {
	messenger bot.Messenger
}

// Notify sends n to chatID. A chat that blocked or removed the bot, and a
// chat ID that is no number at all, are reported as announce.ErrUnreachable:
// retrying cannot help them.
func (m notifier) Notify(ctx context.Context, chatID string, n announce.Notice) error {
	id, err := strconv.ParseInt(chatID, 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("chat ID %q is not a Telegram chat ID: %w", chatID, announce.ErrUnreachable)
	}
	_, err = m.messenger.Send(ctx, bot.Reply{ChatID: id, Text: FormatNotice(n), Priority: bot.PriorityNotice})
	if errors.Is(err, bot.ErrChatUnreachable) {
		return fmt.Errorf("notify chat %d: %w: %w", id, announce.ErrUnreachable, err)
	}
	if err != nil {
		return fmt.Errorf("notify chat %d: %w", id, err)
	}
	return nil
}
