package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"golang.org/x/time/rate"
)

// ErrChatUnreachable is returned for a chat that blocked the bot, removed it
// or does not exist. Such a send is not retried.
var ErrChatUnreachable = errors.New("chat unreachable: it blocked or removed the bot, or does not exist")

// ErrClosed is returned for sends still queued when the Sender is closed.
var ErrClosed = errors.New("telegram sender closed")

// Rate is a token bucket: one call per Every, up to Burst at once.
type Rate struct {
	Every time.Duration
	Burst int
}

func (r Rate) limiter() *rate.Limiter { return rate.NewLimiter(rate.Every(r.Every), r.Burst) }

// Limits pace outgoing messages and edits. Telegram allows about 1 message
// a second per chat, 20 a minute per group and 30 a second overall, and
// tolerates short bursts. The defaults are those rates with bursts one
// smaller than Telegram tolerates (3, 20, 30), so that calls bunched up by
// network jitter still fit.
type Limits struct {
	// PerChat applies to every chat; default 1 a second, bursts of 2.
	PerChat Rate
	// PerGroup applies to groups (negative chat IDs) on top of PerChat;
	// default one per 3 s, bursts of 19.
	PerGroup Rate
	// Global applies to all calls together; default 30 a second, bursts of 29.
	Global Rate
}

func (l Limits) withDefaults() Limits {
	defaults := Limits{
		PerChat:  Rate{Every: time.Second, Burst: 2},
		PerGroup: Rate{Every: 3 * time.Second, Burst: 19},
		Global:   Rate{Every: time.Second / 30, Burst: 29},
	}
	for _, r := range []struct{ got, def *Rate }{{&l.PerChat, &defaults.PerChat}, {&l.PerGroup, &defaults.PerGroup}, {&l.Global, &defaults.Global}} {
		if r.got.Every <= 0 {
			r.got.Every = r.def.Every
		}
		if r.got.Burst <= 0 {
			r.got.Burst = r.def.Burst
		}
	}
	return l
}

// Priority orders the outbox: replies before notices before progress.
type Priority int

// The priorities, most urgent first. The zero value is a reply.
const (
	// PriorityReply is a command's reply or a conversation's question.
	PriorityReply Priority = iota
	// PriorityNotice is an announcement; notices queued for one chat are
	// joined into one message.
	PriorityNotice
	// PriorityProgress is a live-progress edit; a newer edit of the same
	// message supersedes one still queued.
	PriorityProgress
	priorities
)

// floodWindow: 429s for two different chats this close together mean the
// bot hit Telegram's global limit, so every chat waits.
const floodWindow = time.Second

// idleWait is how long the scheduler sleeps with nothing queued; any Send
// wakes it earlier.
const idleWait = time.Minute

// Sender is the outbox for all outgoing traffic. One scheduler picks the next
// call: the most urgent priority first, oldest first within it, among the
// chats whose limits allow a call now. Each chat has at most one call in
// flight, so its messages keep their order within a priority. Notices and
// progress edits may not spend the last token of a chat's bucket, nor the
// last third of the global one: those are kept for replies, so that a reply
// goes out at once even while notices and edits use all the rest. It honours
// retry_after, retries 5xx and network errors with back-off until it succeeds,
// the caller gives up or the Sender is closed.
type Sender struct {
	api     *api
	limits  Limits
	timeout time.Duration
	metrics *Metrics
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	// wg counts the scheduler and the calls in flight; only the scheduler
	// adds to it, so no Add can race with Close's Wait.
	wg   sync.WaitGroup
	wake chan struct{}

	mu          sync.Mutex
	chats       map[int64]*outbox
	global      *rate.Limiter
	pausedUntil time.Time
	lastFlood   flood
	seq         uint64
}

type flood struct {
	chatID int64
	at     time.Time
}

// outbox is the queue of one chat, one list per priority.
type outbox struct {
	chatID   int64
	queues   [priorities][]*outCall
	limiters []*rate.Limiter
	// busy is set while a call for this chat is in flight.
	busy bool
	// notBefore is the earliest time of the next call: retry_after, back-off.
	notBefore time.Time
	retry     backoff
}

// outCall is one API call: a whole Reply or one part of a long one.
type outCall struct {
	send  *pendingSend
	reply Reply
	// last marks the final part: its result is the Send's result.
	last bool
	// seq orders calls across chats: oldest first within a priority.
	seq uint64
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
	s := &Sender{
		api: a, limits: limits, timeout: timeout, metrics: m, log: log,
		ctx: ctx, cancel: cancel,
		wake:   make(chan struct{}, 1),
		chats:  make(map[int64]*outbox),
		global: limits.Global.limiter(),
	}
	s.wg.Add(1)
	go s.run()
	return s
}

// Send queues r and waits for the result: the message ID (of the last part,
// for a text split in parts; of the combined message, for joined notices;
// r.EditMessageID for an edit, also when a newer edit superseded it).
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
	box := s.outbox(r.ChatID)
	if r.EditMessageID != 0 {
		s.supersede(box, r)
	}
	for i, part := range parts {
		s.seq++
		box.queues[r.Priority] = append(box.queues[r.Priority], &outCall{send: p, reply: part, last: i == len(parts)-1, seq: s.seq})
	}
	s.metrics.outboxAdd(len(parts))
	s.mu.Unlock()
	s.poke()
	select {
	case res := <-p.result:
		return res.messageID, res.err
	case <-ctx.Done():
		s.poke() // let the scheduler drop it
		return 0, ctx.Err()
	}
}

// outbox returns chatID's outbox, made on first use. Callers hold s.mu.
func (s *Sender) outbox(chatID int64) *outbox {
	box, ok := s.chats[chatID]
	if !ok {
		box = &outbox{chatID: chatID, limiters: []*rate.Limiter{s.limits.PerChat.limiter()}, retry: newBackoff(time.Second, time.Minute)}
		if chatID < 0 {
			box.limiters = append(box.limiters, s.limits.PerGroup.limiter())
		}
		s.chats[chatID] = box
	}
	return box
}

// supersede drops the queued edits of the same message that r replaces: an
// edit with text replaces any earlier edit, one of the buttons alone only an
// earlier one of the buttons alone. Their Sends succeed. Callers hold s.mu.
func (s *Sender) supersede(box *outbox, r Reply) {
	queue := box.queues[r.Priority]
	kept := queue[:0]
	for _, c := range queue {
		if c.reply.EditMessageID == r.EditMessageID && (r.Text != "" || c.reply.Text == "") {
			s.finish(c.send, sendResult{messageID: r.EditMessageID})
			s.metrics.outboxAdd(-1)
			s.metrics.superseded()
			continue
		}
		kept = append(kept, c)
	}
	clear(queue[len(kept):])
	box.queues[r.Priority] = kept
}

// prepare checks r and splits a long text into parts.
func prepare(r Reply) ([]Reply, error) {
	if r.ChatID == 0 {
		return nil, errors.New("send: no chat ID")
	}
	if r.Priority < 0 || r.Priority >= priorities {
		return nil, fmt.Errorf("send: unknown priority %d", r.Priority)
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
		parts[i] = Reply{ChatID: r.ChatID, Text: text, Priority: r.Priority}
	}
	parts[len(parts)-1].Buttons = r.Buttons
	return parts, nil
}

// AnswerCallback answers a button press right away, ahead of every queued
// message: it is not a message and not subject to the message limits.
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

// poke wakes the scheduler.
func (s *Sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the scheduler: it starts every call that may go now, then sleeps
// until the next may or something changes.
func (s *Sender) run() {
	defer s.wg.Done()
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	for {
		timer.Reset(s.dispatch())
		select {
		case <-s.ctx.Done():
			s.abandon()
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts the calls that may go now and returns how long until the
// next one may.
func (s *Sender) dispatch() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		now := time.Now()
		box, prio, wait := s.pick(now)
		if box == nil {
			return wait
		}
		calls, reply := s.take(box, prio)
		for _, lim := range box.limiters {
			lim.AllowN(now, 1)
		}
		s.global.AllowN(now, 1)
		box.busy = true
		s.wg.Add(1)
		go s.call(box, calls, reply)
	}
}

// pick returns the chat and priority of the next call that may go at now,
// or, when none may, how long until one might. It forgets idle chats whose
// buckets are full again. Callers hold s.mu.
func (s *Sender) pick(now time.Time) (best *outbox, bestPrio Priority, wait time.Duration) {
	wait = idleWait
	var bestSeq uint64
	for id, box := range s.chats {
		if box.busy {
			continue
		}
		prio, head := s.head(box)
		if head == nil {
			if s.rested(box, now) {
				delete(s.chats, id)
			}
			continue
		}
		if best != nil && (prio > bestPrio || (prio == bestPrio && head.seq > bestSeq)) {
			continue
		}
		if until := s.until(box, prio, now); until > 0 {
			wait = min(wait, until)
			continue
		}
		best, bestPrio, bestSeq = box, prio, head.seq
	}
	return best, bestPrio, wait
}

// head drops the sends whose callers gave up and returns the first call of
// the most urgent non-empty queue. Callers hold s.mu.
func (s *Sender) head(box *outbox) (Priority, *outCall) {
	for prio := range priorities {
		queue := box.queues[prio]
		live := queue[:0]
		for _, c := range queue {
			if err := c.send.ctx.Err(); err != nil {
				s.finish(c.send, sendResult{err: err})
			}
			if c.send.done {
				s.metrics.outboxAdd(-1)
				continue
			}
			live = append(live, c)
		}
		clear(queue[len(live):])
		box.queues[prio] = live
		if len(live) > 0 {
			return prio, live[0]
		}
	}
	return 0, nil
}

// until is how long a call of priority prio for box must wait at now: for a
// pause, a back-off, or tokens. Notices and edits need a token more in the
// chat's buckets and a third of the global burst more, kept for replies.
func (s *Sender) until(box *outbox, prio Priority, now time.Time) time.Duration {
	wait := max(box.notBefore.Sub(now), s.pausedUntil.Sub(now), 0)
	for _, lim := range box.limiters {
		wait = max(wait, tokenWait(lim, 1+reserve(prio, min(1, lim.Burst()-1)), now))
	}
	return max(wait, tokenWait(s.global, 1+reserve(prio, (s.global.Burst()-1)/3), now))
}

// reserve is how many tokens a call of prio must leave in a bucket: n for
// notices and edits, none for replies.
func reserve(prio Priority, n int) float64 {
	if prio == PriorityReply {
		return 0
	}
	return float64(n)
}

// tokenWait is how long until lim holds need tokens (0 if it does at now).
func tokenWait(lim *rate.Limiter, need float64, now time.Time) time.Duration {
	missing := need - lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	if float64(lim.Burst()) < need {
		return idleWait // can never hold that many: wait for a change
	}
	return time.Duration(math.Ceil(missing / float64(lim.Limit()) * float64(time.Second)))
}

// rested reports whether an empty outbox can be forgotten: nothing in
// flight, no pause, and buckets full, so a new one would behave the same.
func (s *Sender) rested(box *outbox, now time.Time) bool {
	if box.busy || now.Before(box.notBefore) {
		return false
	}
	for _, lim := range box.limiters {
		if lim.TokensAt(now) < float64(lim.Burst()) {
			return false
		}
	}
	return true
}

// take removes and returns the calls to make now with the reply that carries
// them: the head of the queue of prio, joined by the notices right behind it
// when it is a notice and they fit in one message. Callers hold s.mu.
func (s *Sender) take(box *outbox, prio Priority) ([]*outCall, Reply) {
	queue := box.queues[prio]
	head := queue[0]
	n, reply := 1, head.reply
	if prio == PriorityNotice && head.plain() {
		text := head.reply.Text
		for ; n < len(queue) && queue[n].plain(); n++ {
			joined := text + "\n\n" + queue[n].reply.Text
			if utf16Len(joined) > MaxTextLength {
				break
			}
			text = joined
		}
		reply.Text = text
		if n > 1 {
			s.log.Debug("joining notices", "chat", box.chatID, "count", n)
		}
	}
	calls := append([]*outCall(nil), queue[:n]...)
	clear(queue[:n])
	box.queues[prio] = queue[n:]
	return calls, reply
}

// plain reports whether c is a whole new message without buttons, not live,
// which may be joined with others.
func (c *outCall) plain() bool {
	return c.send.parts == 1 && c.reply.EditMessageID == 0 && len(c.reply.Buttons) == 0
}

// call makes one API call and records its outcome.
func (s *Sender) call(box *outbox, calls []*outCall, reply Reply) {
	defer s.wg.Done()
	id, err := s.deliver(reply)
	s.settle(box, calls, id, err)
	s.poke()
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
	box.busy = false
	now := time.Now()
	switch {
	case s.ctx.Err() != nil:
		s.complete(calls, sendResult{err: ErrClosed})
	case err == nil:
		box.retry.reset()
		s.metrics.sentMessages(len(calls))
		s.complete(calls, sendResult{messageID: id})
	case unreachable(err):
		s.log.Warn("chat unreachable; dropping its queued messages", "chat", box.chatID, "err", err)
		res := sendResult{err: fmt.Errorf("%w: %w", ErrChatUnreachable, err)}
		s.complete(calls, res)
		for prio := range box.queues {
			s.complete(box.queues[prio], res)
			box.queues[prio] = nil
		}
	case apiCode(err) == http.StatusTooManyRequests:
		s.throttled(box, err, now)
		s.requeue(box, calls)
	case isTransient(err):
		delay := box.retry.next()
		box.notBefore = now.Add(delay)
		s.log.Warn("send failed; retrying", "chat", box.chatID, "retry_in", delay, "err", err)
		s.requeue(box, calls)
	default:
		s.log.Warn("send refused", "chat", box.chatID, "err", err)
		s.complete(calls, sendResult{err: err})
	}
}

// complete hands the sends of calls their result: on success only the last
// part of a send completes it, on failure any part does. Callers hold s.mu.
func (s *Sender) complete(calls []*outCall, res sendResult) {
	for _, c := range calls {
		if c.last || res.err != nil {
			s.finish(c.send, res)
		}
	}
	s.metrics.outboxAdd(-len(calls))
}

// requeue puts calls back at the head of their queue, for another try.
// Callers hold s.mu.
func (s *Sender) requeue(box *outbox, calls []*outCall) {
	prio := calls[0].reply.Priority
	box.queues[prio] = append(calls, box.queues[prio]...)
}

// throttled honours a 429: the chat waits retry_after, and every chat does
// when two chats were throttled within floodWindow. Callers hold s.mu.
func (s *Sender) throttled(box *outbox, err error, now time.Time) {
	var apiErr *APIError
	errors.As(err, &apiErr)
	wait := max(apiErr.RetryAfter, time.Second)
	box.notBefore = now.Add(wait)
	s.metrics.throttled()
	global := s.lastFlood.chatID != box.chatID && now.Sub(s.lastFlood.at) < floodWindow
	s.lastFlood = flood{chatID: box.chatID, at: now}
	if global && now.Add(wait).After(s.pausedUntil) {
		s.pausedUntil = now.Add(wait)
	}
	s.log.Warn("Telegram flood control", "chat", box.chatID, "retry_after", wait, "all_chats", global)
}

// abandon fails everything queued when the Sender closes.
func (s *Sender) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, box := range s.chats {
		for prio := range box.queues {
			s.complete(box.queues[prio], sendResult{err: ErrClosed})
			box.queues[prio] = nil
		}
		delete(s.chats, id)
	}
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
