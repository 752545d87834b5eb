package telegramemu

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Chat is a chat as a test describes it. Type is "private", "group" or
// "supergroup"; when empty it follows from the ID (negative: a group).
type Chat struct {
	ID    int64
	Type  string
	Title string
}

// User is a Telegram user a test plays.
type User struct {
	ID        int64
	Username  string
	FirstName string
}

// Message is what the bot sent to a chat, in its latest state.
type Message struct {
	ID     int
	ChatID int64
	// Text is the text as the bot sent it (HTML when ParseMode is "HTML").
	Text      string
	ParseMode string
	Buttons   [][]Button
	// ReplyTo is the message replied to, 0 for none.
	ReplyTo int
	// Edits counts successful editMessageText/editMessageReplyMarkup calls.
	Edits   int
	Deleted bool
	// Sent is when the bot's sendMessage arrived (wall clock), for latency
	// measurements; zero for the users' messages.
	Sent time.Time
}

// Button is an inline-keyboard button: a callback button (Data) or a link (URL).
type Button struct {
	Text string
	Data string
	URL  string
}

// Telegram's size limits.
const (
	maxTextLength     = 4096 // UTF-16 code units of the text after entity parsing
	maxCallbackData   = 64   // bytes
	maxCallbackAnswer = 200  // characters
)

type chatState struct {
	wire    wireChat
	blocked bool
	unknown bool
	lastID  int
	// messages holds every message of the chat, the users' and the bot's.
	messages []*storedMessage
}

type storedMessage struct {
	Message
	fromBot bool
	from    wireUser
	date    int64
	edited  int64
	plain   string
	markup  *inlineKeyboard
}

func (m *storedMessage) wire(chat wireChat) *wireMessage {
	from := m.from
	w := &wireMessage{MessageID: m.ID, From: &from, Date: m.date, EditDate: m.edited, Chat: chat, Text: m.plain, ReplyMarkup: m.markup}
	if !m.fromBot {
		w.Entities = commandEntity(m.plain)
	}
	return w
}

// commandEntity marks a leading /command[@bot] as Telegram does; bot
// libraries rely on it to recognise commands.
func commandEntity(text string) []wireEntity {
	if !strings.HasPrefix(text, "/") {
		return nil
	}
	end := strings.IndexAny(text, " \t\n")
	if end < 0 {
		end = len(text)
	}
	return []wireEntity{{Type: "bot_command", Offset: 0, Length: utf16Len(text[:end])}}
}

// chat returns the state of chat id, creating it as Telegram knows every chat
// the bot may write to unless a test marks it unknown. Callers hold s.mu.
func (s *Server) chat(id int64) *chatState {
	c, ok := s.chats[id]
	if !ok {
		c = &chatState{wire: wireChat{ID: id, Type: chatType(Chat{ID: id})}}
		s.chats[id] = c
	}
	return c
}

func chatType(c Chat) string {
	switch {
	case c.Type != "":
		return c.Type
	case c.ID < -1_000_000_000_000:
		return "supergroup"
	case c.ID < 0:
		return "group"
	}
	return "private"
}

func (c *chatState) find(id int) *storedMessage {
	for _, m := range c.messages {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// MarkBlocked makes every call for chatID answer 403 "bot was blocked by the user".
func (s *Server) MarkBlocked(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat(chatID).blocked = true
}

// MarkUnknown makes every call for chatID answer 400 "chat not found".
func (s *Server) MarkUnknown(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chat(chatID).unknown = true
}

// reachable resolves the chat_id parameter to a chat the bot may write to.
// Callers hold s.mu.
func (s *Server) reachable(p params) (*chatState, *apiError) {
	raw := p["chat_id"]
	if raw == "" {
		return nil, badRequest("chat_id is empty")
	}
	id, apiErr := p.int64("chat_id")
	if apiErr != nil {
		return nil, badRequest("chat not found") // @channelusername: no such chat here
	}
	c := s.chat(id)
	switch {
	case c.unknown:
		return nil, badRequest("chat not found")
	case c.blocked:
		return nil, &apiError{code: 403, description: "Forbidden: bot was blocked by the user"}
	}
	return c, nil
}

// content is a validated text with its parse mode and keyboard.
type content struct {
	text, parseMode, plain string
	markup                 *inlineKeyboard
}

// parseText validates text and parse_mode as Telegram does.
func parseText(p params) (content, *apiError) {
	c := content{text: p["text"], parseMode: p["parse_mode"], plain: p["text"]}
	if !utf8.ValidString(c.text) {
		return c, badRequest("text must be encoded in UTF-8")
	}
	switch c.parseMode {
	case "":
	case "HTML", "html":
		plain, err := parseHTML(c.text)
		if err != nil {
			return c, badRequest("can't parse entities: %v", err)
		}
		c.plain = plain
	case "Markdown", "MarkdownV2":
		return c, badRequest("telegramemu supports parse_mode HTML only, not %s", c.parseMode)
	default:
		return c, badRequest("unsupported parse_mode")
	}
	switch n := utf16Len(c.plain); {
	case strings.TrimSpace(c.plain) == "":
		return c, badRequest("message text is empty")
	case n > maxTextLength:
		return c, badRequest("message is too long")
	}
	return c, nil
}

// parseMarkup validates reply_markup; only inline keyboards are kept.
func parseMarkup(p params) (*inlineKeyboard, *apiError) {
	raw, ok := p["reply_markup"]
	if !ok || raw == "" || raw == "null" {
		return nil, nil
	}
	var kb inlineKeyboard
	if err := json.Unmarshal([]byte(raw), &kb); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if kb.InlineKeyboard == nil {
		return nil, nil // a reply keyboard or its removal: not shown in Messages
	}
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			if apiErr := checkButton(b); apiErr != nil {
				return nil, apiErr
			}
		}
	}
	return &kb, nil
}

func checkButton(b inlineButton) *apiError {
	switch {
	case b.Text == "":
		return badRequest("can't parse inline keyboard button: Text must be non-empty")
	case b.CallbackData != nil && (*b.CallbackData == "" || len(*b.CallbackData) > maxCallbackData):
		return badRequest("BUTTON_DATA_INVALID")
	case b.CallbackData == nil && b.URL == "" && b.SwitchInlineQuery == nil && b.SwitchInlineQueryCurrentChat == nil:
		return badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
	}
	return nil
}

func buttons(kb *inlineKeyboard) [][]Button {
	if kb == nil {
		return nil
	}
	rows := make([][]Button, len(kb.InlineKeyboard))
	for i, row := range kb.InlineKeyboard {
		for _, b := range row {
			data := ""
			if b.CallbackData != nil {
				data = *b.CallbackData
			}
			rows[i] = append(rows[i], Button{Text: b.Text, Data: data, URL: b.URL})
		}
	}
	return rows
}

func cloneButtons(rows [][]Button) [][]Button {
	if rows == nil {
		return nil
	}
	out := make([][]Button, len(rows))
	for i, row := range rows {
		out[i] = slices.Clone(row)
	}
	return out
}

func sameMarkup(a, b *inlineKeyboard) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Messages returns the bot's messages in chatID, in the order sent, each in
// its latest state.
func (s *Server) Messages(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.botMessages(chatID)
}

// botMessages copies the bot's messages of chatID. Callers hold s.mu.
func (s *Server) botMessages(chatID int64) []Message {
	c, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	var out []Message
	for _, m := range c.messages {
		if m.fromBot {
			msg := m.Message
			msg.Buttons = cloneButtons(msg.Buttons)
			out = append(out, msg)
		}
	}
	return out
}

// WaitMessage waits until a bot message in chatID, new or edited, satisfies
// match, and returns it. Messages already there count: the first match in
// send order wins.
func (s *Server) WaitMessage(ctx context.Context, chatID int64, match func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		msgs, changed := s.botMessages(chatID), s.changed
		s.mu.Unlock()
		for _, m := range msgs {
			if match(m) {
				return m, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			texts := make([]string, len(msgs))
			for i, m := range msgs {
				texts[i] = fmt.Sprintf("%d: %q", m.ID, m.Text)
			}
			return Message{}, fmt.Errorf("telegramemu: no matching message in chat %d (has %s): %w", chatID, strings.Join(texts, ", "), ctx.Err())
		}
	}
}

// messageChanged wakes WaitMessage and WaitCallbackAnswer callers: the bot
// sent, edited or deleted a message or answered a button. Callers hold s.mu.
func (s *Server) messageChanged() {
	close(s.changed)
	s.changed = make(chan struct{})
}
