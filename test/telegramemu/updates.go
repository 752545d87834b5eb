package telegramemu

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Telegram's answers to getUpdates calls it refuses.
const (
	conflictOtherPoll = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	conflictWebhook   = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)

// maxPollTimeout caps a getUpdates timeout (seconds) so the duration cannot overflow.
const maxPollTimeout = 24 * 60 * 60

// maxWebhookRetry caps the doubling delay between webhook delivery attempts.
const maxWebhookRetry = 2 * time.Second

// poll is a getUpdates request in flight; another request or a webhook ends it.
type poll struct {
	done   chan struct{}
	reason string
}

// end terminates p with a 409 reason. Callers hold s.mu.
func (p *poll) end(reason string) {
	if p.reason == "" {
		p.reason = reason
		close(p.done)
	}
}

func (s *Server) getUpdates(ctx context.Context, p params) (any, *apiError) {
	offset, apiErr := p.int64("offset")
	if apiErr != nil {
		return nil, apiErr
	}
	limit, apiErr := p.int64("limit")
	if apiErr != nil {
		return nil, apiErr
	}
	timeout, apiErr := p.int64("timeout")
	if apiErr != nil {
		return nil, apiErr
	}
	if limit < 1 || limit > 100 {
		limit = 100 // Telegram's default, and how it treats values out of range
	}
	allowed, apiErr := allowedUpdates(p)
	if apiErr != nil {
		return nil, apiErr
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webhook != nil {
		return nil, &apiError{code: http.StatusConflict, description: conflictWebhook}
	}
	me := s.startPoll()
	defer s.endPoll(me)
	s.confirm(offset)

	deadline := time.NewTimer(time.Duration(min(max(timeout, 0), maxPollTimeout)) * time.Second)
	defer deadline.Stop()
	for {
		batch := s.batch(int(limit), allowed)
		if len(batch) > 0 || timeout <= 0 {
			return batch, nil
		}
		added := s.updateAdded
		s.mu.Unlock()
		select {
		case <-added:
		case <-me.done:
		case <-deadline.C:
			timeout = 0
		case <-ctx.Done():
			timeout = 0
		case <-s.closed:
			timeout = 0
		}
		s.mu.Lock()
		if me.reason != "" {
			return nil, &apiError{code: http.StatusConflict, description: me.reason}
		}
	}
}

// startPoll registers a getUpdates request, ending the one in flight as
// Telegram does. Callers hold s.mu.
func (s *Server) startPoll() *poll {
	if s.poll != nil {
		s.poll.end(conflictOtherPoll)
		s.stats.PollConflicts++
	}
	s.poll = &poll{done: make(chan struct{})}
	s.polls++
	s.stats.MaxConcurrentPolls = max(s.stats.MaxConcurrentPolls, s.polls)
	return s.poll
}

func (s *Server) endPoll(p *poll) {
	s.polls--
	if s.poll == p {
		s.poll = nil
	}
}

// confirm forgets the updates an offset confirms: all before a positive
// offset; all but the last -offset for a negative one. An offset beyond every
// ID issued, which a bot can only hold from before RestartUpdateIDs,
// confirms nothing, as Telegram's does after it restarted its IDs. Callers
// hold s.mu.
func (s *Server) confirm(offset int64) {
	switch {
	case offset > s.nextUpdate:
	case offset > 0:
		s.updates = slices.DeleteFunc(s.updates, func(u wireUpdate) bool { return u.UpdateID < offset })
	case offset < 0 && int(-offset) < len(s.updates):
		s.updates = slices.Delete(s.updates, 0, len(s.updates)-int(-offset))
	}
}

// batch returns up to limit pending updates of the allowed kinds. Callers hold s.mu.
func (s *Server) batch(limit int, allowed []string) []wireUpdate {
	out := []wireUpdate{}
	for _, u := range s.updates {
		if len(out) == limit {
			break
		}
		if len(allowed) == 0 || slices.Contains(allowed, u.kind()) {
			out = append(out, u)
		}
	}
	return out
}

func allowedUpdates(p params) ([]string, *apiError) {
	raw := p["allowed_updates"]
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var kinds []string
	if err := json.Unmarshal([]byte(raw), &kinds); err != nil {
		return nil, badRequest("can't parse allowed updates: %v", err)
	}
	return kinds, nil
}

// enqueue adds an update for the bot and returns its ID. Callers hold s.mu.
func (s *Server) enqueue(u wireUpdate) int64 {
	u.UpdateID = s.nextUpdate
	s.nextUpdate++
	s.updates = append(s.updates, u)
	close(s.updateAdded)
	s.updateAdded = make(chan struct{})
	return u.UpdateID
}

// RestartUpdateIDs makes next the ID of the next update, as Telegram does
// after a week without updates, when it picks the next ID at random: it may
// be lower than every ID before.
func (s *Server) RestartUpdateIDs(next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUpdate = next
}

// PendingUpdates counts updates not yet confirmed by getUpdates or accepted
// by the webhook.
func (s *Server) PendingUpdates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// SendText is user from writing text in chat; it returns the update's ID.
func (s *Server) SendText(chat Chat, from User, text string) (updateID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.userChat(chat, from)
	c.lastID++
	m := &storedMessage{
		Message: Message{ID: c.lastID, ChatID: chat.ID, Text: text},
		from:    wireUserOf(from), date: s.opts.Now().Unix(), plain: text,
	}
	c.messages = append(c.messages, m)
	return s.enqueue(wireUpdate{Message: m.wire(c.wire)})
}

// PressButton is user from pressing the inline button with callback data
// data under the bot's message messageID. It returns the update's ID and the
// callback query ID the bot must answer. Pressing a button the message does
// not have fails the test; ForgeCallback sends such a press anyway.
func (s *Server) PressButton(chat Chat, from User, messageID int, data string) (updateID int64, callbackID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.userChat(chat, from)
	m := c.find(messageID)
	if m == nil || !m.fromBot || m.Deleted || !hasButton(m.Buttons, data) {
		s.t.Errorf("telegramemu: chat %d has no bot message %d with a button %q", chat.ID, messageID, data)
		return 0, ""
	}
	return s.press(c, from, m.wire(c.wire), data)
}

// ForgeCallback sends a button press with any data for any message ID, as a
// hostile client might.
func (s *Server) ForgeCallback(chat Chat, from User, messageID int, data string) (updateID int64, callbackID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.userChat(chat, from)
	msg := &wireMessage{MessageID: messageID, Chat: c.wire, Date: s.opts.Now().Unix()}
	if m := c.find(messageID); m != nil {
		msg = m.wire(c.wire)
	}
	return s.press(c, from, msg, data)
}

// press enqueues a callback query. Callers hold s.mu.
func (s *Server) press(c *chatState, from User, msg *wireMessage, data string) (int64, string) {
	id := strconv.FormatInt(s.nextQuery, 10)
	s.nextQuery++
	s.callbacks[id] = &callback{}
	updateID := s.enqueue(wireUpdate{CallbackQuery: &wireCallbackQuery{
		ID: id, From: wireUserOf(from), Message: msg, Data: data,
		ChatInstance: fmt.Sprintf("-%d", c.wire.ID*7919+1),
	}})
	return updateID, id
}

func hasButton(rows [][]Button, data string) bool {
	for _, row := range rows {
		for _, b := range row {
			if b.Data == data && b.URL == "" {
				return true
			}
		}
	}
	return false
}

// userChat records what a user's action tells about chat. Callers hold s.mu.
func (s *Server) userChat(chat Chat, from User) *chatState {
	c := s.chat(chat.ID)
	c.wire = wireChat{ID: chat.ID, Type: chatType(chat), Title: chat.Title}
	if c.wire.Type == "private" {
		c.wire.Username, c.wire.FirstName = from.Username, wireUserOf(from).FirstName
	}
	return c
}

func wireUserOf(u User) wireUser {
	first := u.FirstName
	if first == "" {
		first = u.Username // Telegram requires a first name; tests may omit it
	}
	if first == "" {
		first = "User " + strconv.FormatInt(u.ID, 10)
	}
	return wireUser{ID: u.ID, FirstName: first, Username: u.Username}
}

// webhook is a registered webhook and its delivery goroutine.
type webhook struct {
	url, secret    string
	maxConnections int
	allowed        []string
	lastErrorDate  int64
	lastError      string
	cancel         context.CancelFunc
	stopped        chan struct{}
}

var secretToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (s *Server) setWebhook(_ context.Context, p params) (any, *apiError) {
	if p["url"] == "" {
		return s.deleteWebhook(context.Background(), p)
	}
	u, err := url.Parse(p["url"])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, badRequest("bad webhook: an HTTP or HTTPS URL must be provided for webhook")
	}
	secret := p["secret_token"]
	if secret != "" && !secretToken.MatchString(secret) {
		return nil, badRequest("bad webhook: secret token contains unallowed characters")
	}
	maxConns, apiErr := p.int64("max_connections")
	if apiErr != nil {
		return nil, apiErr
	}
	if maxConns == 0 {
		maxConns = 40
	}
	if maxConns < 1 || maxConns > 100 {
		return nil, badRequest("bad webhook: max_connections must be between 1 and 100")
	}
	allowed, apiErr := allowedUpdates(p)
	if apiErr != nil {
		return nil, apiErr
	}

	s.webhookMu.Lock()
	defer s.webhookMu.Unlock()
	s.stopWebhookLocked()
	ctx, cancel := context.WithCancel(context.Background())
	hook := &webhook{url: u.String(), secret: secret, maxConnections: int(maxConns), allowed: allowed, cancel: cancel, stopped: make(chan struct{})}
	s.mu.Lock()
	s.webhook = hook
	if s.poll != nil {
		s.poll.end(conflictWebhook)
	}
	if p.bool("drop_pending_updates") {
		s.updates = nil
	}
	s.mu.Unlock()
	go s.deliver(ctx, hook)
	return true, nil
}

func (s *Server) deleteWebhook(_ context.Context, p params) (any, *apiError) {
	s.webhookMu.Lock()
	defer s.webhookMu.Unlock()
	s.stopWebhookLocked()
	if p.bool("drop_pending_updates") {
		s.mu.Lock()
		s.updates = nil
		s.mu.Unlock()
	}
	return true, nil
}

func (s *Server) stopWebhook() {
	s.webhookMu.Lock()
	defer s.webhookMu.Unlock()
	s.stopWebhookLocked()
}

// stopWebhookLocked removes the webhook and waits for its deliveries to
// stop. Callers hold s.webhookMu, not s.mu.
func (s *Server) stopWebhookLocked() {
	s.mu.Lock()
	hook := s.webhook
	s.webhook = nil
	s.mu.Unlock()
	if hook != nil {
		hook.cancel()
		<-hook.stopped
	}
}

func (s *Server) getWebhookInfo(context.Context, params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := wireWebhookInfo{PendingUpdateCount: len(s.updates)}
	if h := s.webhook; h != nil {
		info.URL, info.MaxConnections, info.AllowedUpdates = h.url, h.maxConnections, h.allowed
		info.LastErrorDate, info.LastErrorMessage = h.lastErrorDate, h.lastError
	}
	return info, nil
}

// Webhook returns the registered webhook, if any.
func (s *Server) Webhook() (url, secret string, set bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webhook == nil {
		return "", "", false
	}
	return s.webhook.url, s.webhook.secret, true
}

// deliver POSTs pending updates to the webhook one at a time, in order,
// retrying each until the webhook answers 2xx, as Telegram does.
func (s *Server) deliver(ctx context.Context, hook *webhook) {
	defer close(hook.stopped)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Telegram accepts self-signed certificates uploaded with setWebhook.
	transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test emulator
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	defer transport.CloseIdleConnections()
	retry := s.opts.WebhookRetry
	for {
		s.mu.Lock()
		u, ok := s.nextForWebhook(hook.allowed)
		added := s.updateAdded
		s.mu.Unlock()
		if !ok {
			select {
			case <-added:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := post(ctx, client, hook, u)
		s.mu.Lock()
		if err == nil {
			s.updates = slices.DeleteFunc(s.updates, func(p wireUpdate) bool { return p.UpdateID == u.UpdateID })
			s.stats.WebhookDeliveries++
			retry = s.opts.WebhookRetry
		} else {
			s.stats.WebhookFailures++
			hook.lastError, hook.lastErrorDate = err.Error(), s.opts.Now().Unix()
		}
		s.mu.Unlock()
		if err == nil {
			continue
		}
		select {
		case <-time.After(retry):
			retry = min(2*retry, maxWebhookRetry)
		case <-ctx.Done():
			return
		}
	}
}

// nextForWebhook returns the first pending update the webhook accepts,
// dropping those of kinds it did not ask for. Callers hold s.mu.
func (s *Server) nextForWebhook(allowed []string) (wireUpdate, bool) {
	if len(allowed) > 0 {
		s.updates = slices.DeleteFunc(s.updates, func(u wireUpdate) bool { return !slices.Contains(allowed, u.kind()) })
	}
	if len(s.updates) == 0 {
		return wireUpdate{}, false
	}
	return s.updates[0], true
}

func post(ctx context.Context, client *http.Client, hook *webhook, u wireUpdate) error {
	body, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode update %d: %w", u.UpdateID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if hook.secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", hook.secret)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("connection failed: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("wrong response from the webhook: %s", resp.Status)
	}
	return nil
}
