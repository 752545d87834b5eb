package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Telegram is the Telegram transport: it receives updates by long polling or
// webhook and hands them to a Handler, and sends replies through its
// rate-limited Sender.
type Telegram struct {
	cfg    Config
	api    *api
	self   tgbotapi.User
	sender *Sender
	log    *slog.Logger
	// problem is why updates do not flow now (a failing poll, a webhook
	// not yet registered); nil while they do. Read by Healthy.
	problem atomic.Pointer[error]
}

// errNotStarted is Healthy's answer before Run receives updates.
var errNotStarted = errors.New("not receiving updates yet")

// Healthy reports whether updates flow: nil once polling succeeds or the
// webhook is registered, the last error while polls fail. A readiness probe
// reads it.
func (t *Telegram) Healthy() error {
	if p := t.problem.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *Telegram) setProblem(err error) {
	if err == nil {
		t.problem.Store(nil)
		return
	}
	t.problem.Store(&err)
}

// Command is one entry of the bot's command menu.
type Command struct {
	Command     string
	Description string
}

// New checks cfg and the token (getMe, essential) and returns the transport.
// Its Sender runs from now on; Close stops it. A failed getMe is one line
// that says what went wrong; errors.Is tells ErrUnreachable, ErrTokenRejected
// and ErrNoBotAPI apart.
func New(cfg Config) (*Telegram, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := newAPI(cfg.secrets(), cfg.Endpoint, cfg.HTTPClient)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
	defer cancel()
	raw, err := a.call(ctx, "getMe", nil)
	if err != nil {
		return nil, a.startError(err, cfg.RequestTimeout)
	}
	var self tgbotapi.User
	if err := json.Unmarshal(raw, &self); err != nil {
		return nil, fmt.Errorf("telegram getMe: decode: %w", err)
	}
	log := cfg.Logger.With("bot", self.UserName)
	log.Info("connected to the Telegram Bot API", "id", self.ID, "mode", cfg.Mode)
	return &Telegram{
		cfg:    cfg,
		api:    a,
		self:   self,
		sender: newSender(a, cfg.Limits, cfg.RequestTimeout, cfg.Metrics, log),
		log:    log,
	}, nil
}

// Username is the bot's @username without the @.
func (t *Telegram) Username() string { return t.self.UserName }

// Messenger is the rate-limited sender for all outgoing traffic.
func (t *Telegram) Messenger() Messenger { return t.sender }

// Close stops the sender; Sends waiting in its queue fail with ErrClosed.
func (t *Telegram) Close() { t.sender.Close() }

// SetCommands registers the command menu (setMyCommands). An endpoint without
// the method is logged and skipped.
func (t *Telegram) SetCommands(ctx context.Context, commands []Command) error {
	list := make([]tgbotapi.BotCommand, len(commands))
	for i, c := range commands {
		list[i] = tgbotapi.BotCommand{Command: c.Command, Description: c.Description}
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
	defer cancel()
	_, err := t.api.request(ctx, "setMyCommands", tgbotapi.NewSetMyCommands(list...))
	if apiCode(err) == http.StatusNotFound {
		t.log.Warn("endpoint lacks setMyCommands; command menu not registered")
		return nil
	}
	return err
}

// Run receives updates in the configured mode and hands them to h until ctx
// ends; it returns nil then, or an error if receiving cannot work at all
// (bad token, an endpoint without getUpdates, a listen address in use).
func (t *Telegram) Run(ctx context.Context, h Handler) error {
	t.setProblem(errNotStarted)
	if t.cfg.Mode == ModeWebhook {
		return t.serveWebhook(ctx, h)
	}
	return t.poll(ctx, h)
}

// maxPending bounds the updates accepted and not yet handled.
const maxPending = 1000

// poll long-polls getUpdates. The offset that confirms updates to Telegram
// (sent with the next getUpdates) advances only past batches that were
// handled, so a crash or shutdown mid-way redelivers the batch; the Journal
// keeps what had started from running twice.
func (t *Telegram) poll(ctx context.Context, h Handler) error {
	if err := t.deleteWebhook(ctx); err != nil {
		return err
	}
	t.setProblem(nil) // Telegram answered; a long poll may now wait quietly
	d := newDispatcher(ctx, h, t.cfg.Journal, t.cfg.Workers, maxPending, t.cfg.Metrics, t.log)
	defer d.wait()
	t.log.Info("polling for updates", "timeout", t.cfg.PollTimeout)

	offset := 0
	retry := newBackoff(time.Second, time.Minute)
	for ctx.Err() == nil {
		updates, err := t.getUpdates(ctx, offset, 100, t.cfg.PollTimeout)
		if ctx.Err() != nil {
			break
		}
		t.setProblem(err)
		if err != nil {
			if !isTransient(err) {
				return fmt.Errorf("telegram: polling stopped: %w", err)
			}
			t.waitAfter(ctx, err, retry.next())
			continue
		}
		retry.reset()
		if offset, err = t.handleBatch(ctx, d, updates, offset); err != nil && ctx.Err() == nil {
			t.log.Warn("updates not handled; fetching them again", "err", err)
			sleep(ctx, retry.next())
		}
	}
	return nil
}

// waitAfter logs a failed poll and waits before the next.
func (t *Telegram) waitAfter(ctx context.Context, err error, wait time.Duration) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > wait {
		wait = apiErr.RetryAfter
	}
	if apiCode(err) == http.StatusConflict {
		t.log.Warn("getUpdates conflict: another instance is polling this bot or a webhook is set", "retry_in", wait, "err", err)
	} else {
		t.log.Warn("getUpdates failed", "retry_in", wait, "err", err)
	}
	sleep(ctx, wait)
}

// handleBatch dispatches updates, waits until they are through and returns
// the offset that confirms them. If one of them could not be claimed or ctx
// ends first, it returns the offset it was given: the batch comes again and
// the Journal skips what was handled.
func (t *Telegram) handleBatch(ctx context.Context, d *dispatcher, updates []tgbotapi.Update, offset int) (int, error) {
	var (
		handled   sync.WaitGroup
		mu        sync.Mutex
		unsettled int
	)
	done := func(settled bool) {
		if !settled {
			mu.Lock()
			unsettled++
			mu.Unlock()
		}
		handled.Done()
	}
	next := offset
	for _, tu := range updates {
		next = tu.UpdateID + 1
		u, ok := fromTelegram(tu)
		if !ok {
			t.log.Debug("ignoring update", "update", tu.UpdateID)
			continue
		}
		handled.Add(1)
		if err := d.submit(ctx, u, done); err != nil {
			handled.Done()
			break
		}
	}
	handled.Wait()
	switch {
	case ctx.Err() != nil:
		return offset, ctx.Err()
	case unsettled > 0:
		return offset, fmt.Errorf("%d of %d updates could not be claimed", unsettled, len(updates))
	}
	return next, nil
}

func (t *Telegram) getUpdates(ctx context.Context, offset, limit int, timeout time.Duration) ([]tgbotapi.Update, error) {
	seconds := int((timeout + time.Second - 1) / time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout+t.cfg.RequestTimeout)
	defer cancel()
	raw, err := t.api.request(ctx, "getUpdates", tgbotapi.UpdateConfig{
		Offset: offset, Limit: limit, Timeout: seconds,
		AllowedUpdates: []string{"message", "callback_query"},
	})
	if err != nil {
		return nil, err
	}
	var updates []tgbotapi.Update
	if err := json.Unmarshal(raw, &updates); err != nil {
		return nil, &APIError{Method: "getUpdates", Err: fmt.Errorf("decode: %w", err)}
	}
	return updates, nil
}

// deleteWebhook makes polling possible; an endpoint without the method has
// no webhook to delete.
func (t *Telegram) deleteWebhook(ctx context.Context) error {
	retry := newBackoff(time.Second, time.Minute)
	for {
		callCtx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
		_, err := t.api.request(callCtx, "deleteWebhook", tgbotapi.DeleteWebhookConfig{})
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return nil
		case apiCode(err) == http.StatusNotFound:
			t.log.Warn("endpoint lacks deleteWebhook; skipped", "err", err)
			return nil
		case !isTransient(err):
			return fmt.Errorf("telegram: %w", err)
		}
		wait := retry.next()
		t.log.Warn("deleteWebhook failed", "retry_in", wait, "err", err)
		sleep(ctx, wait)
	}
}

// backoff is an exponential back-off with jitter: each wait is drawn from
// [d/2, d] where d doubles from min up to max (see jittered).
type backoff struct {
	min, max time.Duration
	attempt  int
}

func newBackoff(minWait, maxWait time.Duration) *backoff {
	return &backoff{min: minWait, max: maxWait}
}

func (b *backoff) next() time.Duration {
	d := jittered(b.min, b.max, b.attempt)
	b.attempt++
	return d
}

// jittered is the wait before retry number attempt (from 0): drawn from
// [d/2, d] where d = minWait doubled attempt times, at most maxWait.
func jittered(minWait, maxWait time.Duration, attempt int) time.Duration {
	d := minWait << min(attempt, 20)
	if d <= 0 || d > maxWait {
		d = maxWait
	}
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
