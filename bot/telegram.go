package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	t := &Telegram{
		cfg:    cfg,
		api:    a,
		self:   self,
		sender: newSender(a, cfg.Limits, cfg.RequestTimeout, cfg.Metrics, log),
		log:    log,
	}
	// Unhealthy until Run receives updates: a probe between New and Run
	// must not see a bot that receives nothing as ready.
	t.setProblem(errNotStarted)
	return t, nil
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

// poll long-polls getUpdates. Each batch is accepted in the ledger (saved to
// the Checkpoint) before the next getUpdates confirms it to Telegram, so a
// crash loses nothing: what was accepted and not started is replayed when
// polling starts again. Replies never hold up polling.
func (t *Telegram) poll(ctx context.Context, h Handler) error {
	if err := t.deleteWebhook(ctx); err != nil {
		return err
	}
	d, err := t.newDispatcher(ctx, h)
	if err != nil {
		return err
	}
	defer d.wait()
	t.setProblem(nil) // Telegram answered; a long poll may now wait quietly
	t.log.Info("polling for updates", "timeout", t.cfg.PollTimeout, "offset", d.ledger.nextOffset())

	retry := newBackoff(time.Second, time.Minute)
	for ctx.Err() == nil {
		if d.waitRoom(ctx) != nil {
			break
		}
		offset := d.ledger.nextOffset()
		updates, err := t.getUpdates(ctx, int(offset), 100, t.cfg.PollTimeout)
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
		b := t.neutral(updates)
		b.polled = offset
		if err := d.accept(ctx, b); err != nil && ctx.Err() == nil {
			return fmt.Errorf("telegram: polling stopped: %w", err)
		}
	}
	return nil
}

// newDispatcher opens the ledger of the Checkpoint and the dispatcher that
// replays what it holds.
func (t *Telegram) newDispatcher(ctx context.Context, h Handler) (*dispatcher, error) {
	l, err := openLedger(ctx, t.cfg.Checkpoint, t.cfg.Metrics, t.log)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	d := newDispatcher(ctx, h, l, t.cfg.UpdateTimeout, t.cfg.Metrics, t.log)
	return d, nil
}

// neutral converts a batch; the updates that are not for us (other kinds)
// come back as IDs only.
func (t *Telegram) neutral(updates []tgbotapi.Update) batch {
	var b batch
	for _, tu := range updates {
		if u, ok := fromTelegram(tu); ok {
			b.updates = append(b.updates, u)
		} else {
			t.log.Debug("ignoring update", "update", tu.UpdateID)
			b.ignored = append(b.ignored, int64(tu.UpdateID))
		}
	}
	return b
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
