package bot

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// SecretHeader carries the webhook secret in Telegram's webhook requests.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// MaxWebhookBody is the largest webhook request body accepted; Telegram's
// updates are a few KiB.
const MaxWebhookBody = 1 << 20

// webhookHandler receives Telegram's webhook POSTs: it authenticates them by
// the secret token, accepts each update in the ledger (saved before the
// answer, so an update answered 200 survives a crash; a repeated delivery is
// recognised by its ID) and answers without waiting for the handler.
type webhookHandler struct {
	secretSum [sha256.Size]byte
	dispatch  *dispatcher
	log       *slog.Logger
}

func newWebhookHandler(secret string, d *dispatcher, log *slog.Logger) *webhookHandler {
	return &webhookHandler{secretSum: sha256.Sum256([]byte(secret)), dispatch: d, log: log}
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	if !h.authentic(r) {
		h.log.Warn("webhook request without the right secret token", "remote", r.RemoteAddr)
		http.Error(w, "wrong secret token", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read body", http.StatusBadRequest)
		return
	}
	var tu tgbotapi.Update
	if err := json.Unmarshal(body, &tu); err != nil {
		http.Error(w, "malformed update: "+err.Error(), http.StatusBadRequest)
		return
	}
	u, ok := fromTelegram(tu)
	b := batch{ignored: []int64{int64(tu.UpdateID)}}
	if ok {
		b = batch{updates: []Update{u}}
	}
	if err := h.dispatch.accept(r.Context(), b); err != nil {
		h.log.Warn("webhook update not accepted", "update", tu.UpdateID, "err", err)
		http.Error(w, "not accepted; deliver it again", http.StatusServiceUnavailable)
	}
}

// authentic compares the secret in constant time; hashing both sides first
// keeps even the secret's length from leaking through timing.
func (h *webhookHandler) authentic(r *http.Request) bool {
	got := r.Header.Get(SecretHeader)
	if got == "" {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], h.secretSum[:]) == 1
}

// serveWebhook listens on WebhookListen, registers WebhookURL with Telegram
// and serves until ctx ends. The webhook stays registered on the way out so
// that the next instance receives what arrives meanwhile.
func (t *Telegram) serveWebhook(ctx context.Context, h Handler) error {
	ln, err := net.Listen("tcp", t.cfg.WebhookListen)
	if err != nil {
		return fmt.Errorf("telegram webhook: %w", err)
	}
	d, err := t.newDispatcher(ctx, h)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           newWebhookHandler(t.cfg.WebhookSecret, d, t.log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.log.Info("serving webhook", "listen", ln.Addr().String())

	if err := t.setWebhook(ctx); err != nil {
		_ = srv.Close()
		return err
	}
	t.setProblem(nil)
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("telegram webhook: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		t.log.Warn("webhook server did not stop cleanly", "err", err)
	}
	d.wait()
	return nil
}

// setWebhook registers the webhook with its secret token and one connection
// at a time, so that updates arrive in order (the ledger takes an ID below
// its offset for a repeat). v5.5.1's WebhookConfig has no secret_token
// field, hence the raw call.
func (t *Telegram) setWebhook(ctx context.Context) error {
	params := tgbotapi.Params{
		"url":             t.cfg.WebhookURL,
		"secret_token":    t.cfg.WebhookSecret,
		"allowed_updates": `["message","callback_query"]`,
		"max_connections": "1",
	}
	retry := newBackoff(time.Second, time.Minute)
	for {
		callCtx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
		_, err := t.api.call(callCtx, "setWebhook", params)
		cancel()
		switch {
		case err == nil:
			t.log.Info("webhook registered", "url", t.api.redact(t.cfg.WebhookURL)) // some put the token in its path
			return nil
		case ctx.Err() != nil:
			return nil
		case apiCode(err) == http.StatusNotFound:
			t.log.Warn("endpoint lacks setWebhook; register the webhook by other means", "err", err)
			return nil
		case !isTransient(err):
			return fmt.Errorf("telegram: %w", err)
		}
		wait := retry.next()
		t.log.Warn("setWebhook failed", "retry_in", wait, "err", err)
		sleep(ctx, wait)
	}
}
