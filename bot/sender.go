package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// ErrChatUnreachable is returned for a chat that blocked the bot, removed it
// or does not exist. Such a send is not retried.
var ErrChatUnreachable = errors.New("chat unreachable: it blocked or removed the bot, or does not exist")

// ErrClosed is returned for sends still queued when the Sender is closed.
var ErrClosed = errors.New("telegram sender closed")

// Limits pace outgoing messages and edits. Telegram allows about 1 message
// a second per chat, 20 a minute per group and 30 a second overall; the
// sender spaces calls evenly at those rates rather than bursting, so it
// never runs into a 429 on its own.
type Limits struct {
	// PerChat is the least time between two calls for one chat; default 1 s.
	PerChat time.Duration
	// PerGroup is the same for groups (negative chat IDs); default 3 s.
	PerGroup time.Duration
	// Global is the least time between any two calls; default 1/30 s.
	Global time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.PerChat <= 0 {
		l.PerChat = time.Second
	}
	if l.PerGroup <= 0 {
		l.PerGroup = 3 * time.Second
	}
	if l.Global <= 0 {
		l.Global = time.Second / 30
	}
	return l
}

// interval is the pace for one chat.
func (l Limits) interval(chatID int64) time.Duration {
	if chatID < 0 {
		return max(l.PerChat, l.PerGroup)
	}
	return l.PerChat
}

// floodWindow: 429s for two different chats this close together mean the
// bot hit Telegram's global limit, so every chat waits.
const floodWindow = time.Second

// Sender is the outbox for all outgoing traffic: one queue per chat, drained
// in order by a goroutine that lives while the queue is not empty. It paces
// calls within Telegram's limits, honours retry_after, retries 5xx and
// network errors with back-off until it succeeds or the Sender is closed,
// and coalesces plain messages that queue up for one chat into one.
type Sender struct {
	api     *api
	limits  Limits
	timeout time.Duration
	metrics *Metrics
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	global  pacer
	wg      sync.WaitGroup

	mu        sync.Mutex
	chats     map[int64]*outbox
	lastFlood flood
}

type flood struct {
	chatID int64
	at     time.Time
}

// outbox is the queue of one chat.
type outbox struct {
	chatID int64
	calls  []*outCall
	// next is the earliest time of the next call: pace, retry_after, back-off.
	next time.Time
	// failures counts consecutive transient failures, for the back-off.
	failures int
}

// outCall is one API call: a whole Reply or one part of a long one.
type outCall struct {
	send  *pendingSend
	reply Reply
	// last marks the final part: its result is the Send's result.
	last bool
}

// pendingSend is one Send waiting for its result.
type pendingSend struct {
	ctx    context.Context
	parts  int
	result chan sendResult
	done   bool // result delivered; guarded by Sender.mu
}

type sendResult struct {
	messageID int
	err       error
}

func newSender(a *api, limits Limits, timeout time.Duration, m *Metrics, log *slog.Logger) *Sender {
	ctx, cancel := context.WithCancel(context.Background())
	limits = limits.withDefaults()
	return &Sender{
		api: a, limits: limits, timeout: timeout, metrics: m, log: log,
		ctx: ctx, cancel: cancel,
		global: pacer{interval: limits.Global},
		chats:  make(map[int64]*outbox),
	}
}

// Send queues r behind the chat's earlier messages and waits for the result:
// the message ID (of the last part, for a text split in parts; of the
// combined message, for coalesced ones; r.EditMessageID for an edit).
func (s *Sender) Send(ctx context.Context, r Reply) (int, error) {
	parts, err := prepare(r)
	if err != nil {
		return 0, err
	}
	p := &pendingSend{ctx: ctx, parts: len(parts), result: make(chan sendResult, 1)}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	box, running := s.chats[r.ChatID]
	if !running {
		box = &outbox{chatID: r.ChatID}
		s.chats[r.ChatID] = box
	}
	for i, part := range parts {
		box.calls = append(box.calls, &outCall{send: p, reply: part, last: i == len(parts)-1})
	}
	s.metrics.outboxAdd(len(parts))
	s.mu.Unlock()
	if !running {
		s.wg.Add(1)
		go s.drain(box)
	}
	select {
	case res := <-p.result:
		return res.messageID, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// prepare checks r and splits a long text into parts.
func prepare(r Reply) ([]Reply, error) {
	if r.ChatID == 0 {
		return nil, errors.New("send: no chat ID")
	}
	if r.EditMessageID == 0 && strings.TrimSpace(r.Text) == "" {
		return nil, errors.New("send: empty text")
	}
	for _, row := range r.Buttons {
		for _, b := range row {
			if b.Text == "" || b.Data == "" || len(b.Data) > 64 {
				return nil, fmt.Errorf("send: button %q needs a text and 1-64 bytes of data, has %d", b.Text, len(b.Data))
			}
		}
	}
	if utf16Len(r.Text) <= MaxTextLength {
		return []Reply{r}, nil
	}
	if r.EditMessageID != 0 {
		return nil, fmt.Errorf("send: an edit of %d characters does not fit in one message (%d)", utf16Len(r.Text), MaxTextLength)
	}
	texts := splitText(r.Text, MaxTextLength, MaxTextLength-tagReserve)
	parts := make([]Reply, len(texts))
	for i, text := range texts {
		parts[i] = Reply{ChatID: r.ChatID, Text: text}
	}
	parts[len(parts)-1].Buttons = r.Buttons
	return parts, nil
}

// AnswerCallback answers a button press right away: it is not a message and
// not subject to the message limits.
func (s *Sender) AnswerCallback(ctx context.Context, callbackID, text string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.api.request(ctx, "answerCallbackQuery", tgbotapi.NewCallback(callbackID, text))
	return err
}

// Close fails the sends still queued with ErrClosed and stops the sender.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}

// drain sends the chat's queue in order until it is empty. It waits for the
// chat's pace before looking, so a message queued right after the last one
// still waits its turn.
func (s *Sender) drain(box *outbox) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		wait := time.Until(box.next)
		s.mu.Unlock()
		if !s.sleep(wait) {
			s.abandon(box)
			return
		}
		if !s.prune(box) {
			return
		}
		if !s.sleep(s.global.reserve()) {
			s.abandon(box)
			return
		}
		calls, reply := s.take(box)
		if calls == nil {
			continue
		}
		id, err := s.deliver(reply)
		s.settle(box, calls, id, err)
	}
}

// sleep waits for d; false when the Sender was closed meanwhile.
func (s *Sender) sleep(d time.Duration) bool {
	if d > 0 {
		sleep(s.ctx, d)
	}
	return s.ctx.Err() == nil
}

// prune drops the sends whose callers gave up; with nothing left it removes
// the outbox and reports false.
func (s *Sender) prune(box *outbox) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := box.calls[:0]
	for _, c := range box.calls {
		if err := c.send.ctx.Err(); err != nil {
			s.finish(c.send, sendResult{err: err})
		}
		if c.send.done {
			s.metrics.outboxAdd(-1)
			continue
		}
		live = append(live, c)
	}
	clear(box.calls[len(live):])
	box.calls = live
	if len(live) == 0 {
		delete(s.chats, box.chatID)
		return false
	}
	return true
}

// take returns the calls to make now with the reply that carries them: the
// head of the queue, joined by the plain messages right behind it when they
// fit in one message; nil if the queue emptied meanwhile.
func (s *Sender) take(box *outbox) ([]*outCall, Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(box.calls) == 0 {
		return nil, Reply{}
	}
	head := box.calls[0]
	if !head.plain() {
		return box.calls[:1], head.reply
	}
	text := head.reply.Text
	n := 1
	for ; n < len(box.calls) && box.calls[n].plain(); n++ {
		joined := text + "\n\n" + box.calls[n].reply.Text
		if utf16Len(joined) > MaxTextLength {
			break
		}
		text = joined
	}
	if n > 1 {
		s.log.Debug("coalescing messages", "chat", box.chatID, "count", n)
	}
	return box.calls[:n], Reply{ChatID: box.chatID, Text: text}
}

// plain reports whether c is a whole new message without buttons, not live,
// which may be joined with others.
func (c *outCall) plain() bool {
	return c.send.parts == 1 && c.reply.EditMessageID == 0 && len(c.reply.Buttons) == 0 && !c.reply.Live
}

// finish hands p its result once. Callers hold s.mu.
func (s *Sender) finish(p *pendingSend, res sendResult) {
	if !p.done {
		p.done = true
		p.result <- res
	}
}

// deliver makes one API call for r.
func (s *Sender) deliver(r Reply) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	markup := keyboard(r.Buttons)
	var (
		method string
		call   tgbotapi.Chattable
	)
	switch {
	case r.EditMessageID == 0:
		msg := tgbotapi.NewMessage(r.ChatID, r.Text)
		msg.ParseMode, msg.DisableWebPagePreview = tgbotapi.ModeHTML, true
		if markup != nil {
			msg.ReplyMarkup = *markup
		}
		method, call = "sendMessage", msg
	case r.Text == "":
		edit := tgbotapi.EditMessageReplyMarkupConfig{BaseEdit: tgbotapi.BaseEdit{ChatID: r.ChatID, MessageID: r.EditMessageID, ReplyMarkup: markup}}
		method, call = "editMessageReplyMarkup", edit
	default:
		edit := tgbotapi.NewEditMessageText(r.ChatID, r.EditMessageID, r.Text)
		edit.ParseMode, edit.DisableWebPagePreview, edit.ReplyMarkup = tgbotapi.ModeHTML, true, markup
		method, call = "editMessageText", edit
	}
	raw, err := s.api.request(ctx, method, call)
	if r.EditMessageID != 0 {
		if err != nil && strings.Contains(err.Error(), "message is not modified") {
			err = nil
		}
		return r.EditMessageID, err
	}
	if err != nil {
		return 0, err
	}
	var sent tgbotapi.Message
	if err := json.Unmarshal(raw, &sent); err != nil {
		return 0, fmt.Errorf("telegram %s: decode: %w", method, err)
	}
	return sent.MessageID, nil
}

func keyboard(rows [][]Button) *tgbotapi.InlineKeyboardMarkup {
	if len(rows) == 0 {
		return nil
	}
	markup := tgbotapi.InlineKeyboardMarkup{InlineKeyboard: make([][]tgbotapi.InlineKeyboardButton, len(rows))}
	for i, row := range rows {
		for _, b := range row {
			markup.InlineKeyboard[i] = append(markup.InlineKeyboard[i], tgbotapi.NewInlineKeyboardButtonData(b.Text, b.Data))
		}
	}
	return &markup
}

// settle records the outcome of a call for the calls it carried.
func (s *Sender) settle(box *outbox, calls []*outCall, id int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case s.ctx.Err() != nil:
		// Closing: the calls stay queued and abandon fails them.
	case err == nil:
		box.failures = 0
		box.next = now.Add(s.limits.interval(box.chatID))
		s.metrics.sentMessages(len(calls))
		s.dequeue(box, calls, sendResult{messageID: id})
	case unreachable(err):
		s.log.Warn("chat unreachable; dropping its queued messages", "chat", box.chatID, "err", err)
		s.dequeue(box, box.calls, sendResult{err: fmt.Errorf("%w: %w", ErrChatUnreachable, err)})
	case apiCode(err) == http.StatusTooManyRequests:
		s.throttled(box, err, now)
	case isTransient(err):
		box.failures++
		delay := jittered(time.Second, time.Minute, box.failures-1)
		box.next = now.Add(delay)
		s.log.Warn("send failed; retrying", "chat", box.chatID, "retry_in", delay, "err", err)
	default:
		s.log.Warn("send refused", "chat", box.chatID, "err", err)
		s.dequeue(box, calls, sendResult{err: err})
	}
}

// throttled honours a 429: the chat waits retry_after, and every chat does
// when two chats were throttled within floodWindow. Callers hold s.mu.
func (s *Sender) throttled(box *outbox, err error, now time.Time) {
	var apiErr *APIError
	errors.As(err, &apiErr)
	wait := max(apiErr.RetryAfter, time.Second)
	box.next = now.Add(wait)
	s.metrics.throttled()
	global := s.lastFlood.chatID != box.chatID && now.Sub(s.lastFlood.at) < floodWindow
	s.lastFlood = flood{chatID: box.chatID, at: now}
	if global {
		s.global.pause(now.Add(wait))
	}
	s.log.Warn("Telegram flood control", "chat", box.chatID, "retry_after", wait, "all_chats", global)
}

// dequeue removes calls (a prefix of the queue, or all of it) and hands the
// sends they complete their result, dropping the remaining parts of a send
// that failed. Callers hold s.mu.
func (s *Sender) dequeue(box *outbox, calls []*outCall, res sendResult) {
	for _, c := range calls {
		if c.last || res.err != nil {
			s.finish(c.send, res)
		}
	}
	n := len(calls)
	for n < len(box.calls) && box.calls[n].send.done {
		n++
	}
	s.metrics.outboxAdd(-n)
	remaining := append([]*outCall(nil), box.calls[n:]...)
	box.calls = remaining
}

// abandon fails what is queued for box when the Sender closes.
func (s *Sender) abandon(box *outbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range box.calls {
		s.finish(c.send, sendResult{err: ErrClosed})
	}
	s.metrics.outboxAdd(-len(box.calls))
	box.calls = nil
	delete(s.chats, box.chatID)
}

// unreachable reports whether err means the chat cannot be written to.
func unreachable(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	desc := strings.ToLower(apiErr.Description)
	return apiErr.Code == http.StatusForbidden ||
		(apiErr.Code == http.StatusBadRequest && (strings.Contains(desc, "chat not found") || strings.Contains(desc, "peer_id_invalid")))
}

// pacer spaces events at least interval apart, and not before a pause ends.
type pacer struct {
	mu          sync.Mutex
	interval    time.Duration
	next        time.Time
	pausedUntil time.Time
}

// reserve books the next slot and returns how long until it.
func (p *pacer) reserve() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	at := now
	if p.next.After(at) {
		at = p.next
	}
	if p.pausedUntil.After(at) {
		at = p.pausedUntil
	}
	p.next = at.Add(p.interval)
	return at.Sub(now)
}

func (p *pacer) pause(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.pausedUntil) {
		p.pausedUntil = until
	}
}
