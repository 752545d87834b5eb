package telegramemu

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

var methods = indexMethods(map[string]method{
	"getMe":                  (*Server).getMe,
	"getUpdates":             (*Server).getUpdates,
	"setWebhook":             (*Server).setWebhook,
	"deleteWebhook":          (*Server).deleteWebhook,
	"getWebhookInfo":         (*Server).getWebhookInfo,
	"sendMessage":            (*Server).sendMessage,
	"editMessageText":        (*Server).editMessageText,
	"editMessageReplyMarkup": (*Server).editMessageReplyMarkup,
	"deleteMessage":          (*Server).deleteMessage,
	"answerCallbackQuery":    (*Server).answerCallbackQuery,
	"setMyCommands":          (*Server).setMyCommands,
})

func (s *Server) getMe(context.Context, params) (any, *apiError) {
	return s.bot, nil
}

func (s *Server) sendMessage(_ context.Context, p params) (any, *apiError) {
	text, apiErr := parseText(p)
	if apiErr != nil {
		return nil, apiErr
	}
	if text.markup, apiErr = parseMarkup(p); apiErr != nil {
		return nil, apiErr
	}
	replyTo, apiErr := p.int64("reply_to_message_id")
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, apiErr := s.reachable(p)
	if apiErr != nil {
		return nil, apiErr
	}
	var replied *storedMessage
	if replyTo != 0 {
		if replied = c.find(int(replyTo)); (replied == nil || replied.Deleted) && !p.bool("allow_sending_without_reply") {
			return nil, badRequest("message to be replied not found")
		}
	}
	if apiErr := s.throttle(c.wire.ID); apiErr != nil {
		return nil, apiErr
	}
	c.lastID++
	m := &storedMessage{
		Message: Message{ID: c.lastID, ChatID: c.wire.ID, Text: text.text, ParseMode: text.parseMode, Buttons: buttons(text.markup), Sent: time.Now()},
		fromBot: true, from: s.bot, date: s.opts.Now().Unix(), plain: text.plain, markup: text.markup,
	}
	if replied != nil && !replied.Deleted {
		m.ReplyTo = replied.ID
	}
	c.messages = append(c.messages, m)
	s.messageChanged()
	w := m.wire(c.wire)
	if m.ReplyTo != 0 {
		w.ReplyToMessage = replied.wire(c.wire)
	}
	return w, nil
}

// throttle applies the flood limits to one message to chatID. Callers hold s.mu.
func (s *Server) throttle(chatID int64) *apiError {
	retryAfter := s.limiter.allow(chatID, s.opts.Now())
	if retryAfter == 0 {
		return nil
	}
	s.stats.RateLimited++
	return tooManyRequests(retryAfter)
}

// editable finds the bot's message addressed by chat_id and message_id.
// Callers hold s.mu.
func (s *Server) editable(p params, verb, past string) (*chatState, *storedMessage, *apiError) {
	if p["inline_message_id"] != "" {
		return nil, nil, badRequest("telegramemu does not support inline messages")
	}
	c, apiErr := s.reachable(p)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	id, apiErr := p.int64("message_id")
	if apiErr != nil {
		return nil, nil, apiErr
	}
	m := c.find(int(id))
	switch {
	case m == nil || m.Deleted:
		return nil, nil, badRequest("message to %s not found", verb)
	case !m.fromBot:
		return nil, nil, badRequest("message can't be %s", past)
	}
	return c, m, nil
}

// notModified is Telegram's answer to an edit that changes nothing.
var notModified = badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")

func (s *Server) editMessageText(_ context.Context, p params) (any, *apiError) {
	text, apiErr := parseText(p)
	if apiErr != nil {
		return nil, apiErr
	}
	// Like Telegram, an edit without reply_markup removes the keyboard.
	if text.markup, apiErr = parseMarkup(p); apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, m, apiErr := s.editable(p, "edit", "edited")
	if apiErr != nil {
		return nil, apiErr
	}
	if m.Text == text.text && m.ParseMode == text.parseMode && sameMarkup(m.markup, text.markup) {
		return nil, notModified
	}
	if apiErr := s.throttle(c.wire.ID); apiErr != nil {
		return nil, apiErr
	}
	m.Text, m.ParseMode, m.plain = text.text, text.parseMode, text.plain
	s.edited(m, text.markup)
	return m.wire(c.wire), nil
}

func (s *Server) editMessageReplyMarkup(_ context.Context, p params) (any, *apiError) {
	markup, apiErr := parseMarkup(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, m, apiErr := s.editable(p, "edit", "edited")
	if apiErr != nil {
		return nil, apiErr
	}
	if sameMarkup(m.markup, markup) {
		return nil, notModified
	}
	if apiErr := s.throttle(c.wire.ID); apiErr != nil {
		return nil, apiErr
	}
	s.edited(m, markup)
	return m.wire(c.wire), nil
}

// edited records an edit of m with its new keyboard. Callers hold s.mu.
func (s *Server) edited(m *storedMessage, markup *inlineKeyboard) {
	m.markup, m.Buttons = markup, buttons(markup)
	m.Edits++
	m.edited = s.opts.Now().Unix()
	s.messageChanged()
}

func (s *Server) deleteMessage(_ context.Context, p params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, m, apiErr := s.editable(p, "delete", "deleted")
	if apiErr != nil {
		return nil, apiErr
	}
	m.Deleted = true
	s.messageChanged()
	return true, nil
}

// callback is a button press and the bot's answer to it.
type callback struct {
	answered bool
	text     string
}

func (s *Server) answerCallbackQuery(_ context.Context, p params) (any, *apiError) {
	text := p["text"]
	if utf8.RuneCountInString(text) > maxCallbackAnswer {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cb, ok := s.callbacks[p["callback_query_id"]]
	if !ok || cb.answered {
		return nil, badRequest("query is too old and response timeout expired or query ID is invalid")
	}
	cb.answered, cb.text = true, text
	s.messageChanged() // wakes WaitCallbackAnswer
	return true, nil
}

// WaitCallbackAnswer waits until the bot answers the button press
// callbackID and returns the toast text it answered with.
func (s *Server) WaitCallbackAnswer(ctx context.Context, callbackID string) (text string, err error) {
	for {
		s.mu.Lock()
		cb, changed := s.callbacks[callbackID], s.changed
		s.mu.Unlock()
		if cb == nil {
			return "", fmt.Errorf("telegramemu: no callback query %q was sent", callbackID)
		}
		if answered, text := s.CallbackAnswer(callbackID); answered {
			return text, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("telegramemu: callback query %q not answered: %w", callbackID, ctx.Err())
		}
	}
}

// CallbackAnswer reports whether the bot answered the button press
// callbackID, and the toast text it answered with.
func (s *Server) CallbackAnswer(callbackID string) (answered bool, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cb, ok := s.callbacks[callbackID]
	if !ok {
		return false, ""
	}
	return cb.answered, cb.text
}

var commandName = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

func (s *Server) setMyCommands(_ context.Context, p params) (any, *apiError) {
	var commands []BotCommand
	if err := json.Unmarshal([]byte(p["commands"]), &commands); err != nil {
		return nil, badRequest("can't parse commands JSON object")
	}
	if len(commands) > 100 {
		return nil, badRequest("too many commands")
	}
	for _, c := range commands {
		if !commandName.MatchString(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := utf8.RuneCountInString(c.Description); n < 1 || n > 256 {
			return nil, badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = commands
	return true, nil
}

// Commands returns the command menu last set with setMyCommands.
func (s *Server) Commands() []BotCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]BotCommand(nil), s.commands...)
}
