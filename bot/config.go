package bot

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Telegram modes of receiving updates.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// DefaultEndpoint is Telegram's Bot API URL format: token, then method.
const DefaultEndpoint = "https://api.telegram.org/bot%s/%s"

// Config configures the Telegram transport. Zero values take the defaults
// documented on each field.
type Config struct {
	// Token is the bot token from @BotFather. Required.
	Token string
	// Endpoint is the Bot API URL format with two %s verbs, token and method;
	// default DefaultEndpoint. A local Bot API server or an emulator goes here.
	Endpoint string
	// Mode is ModePolling (default) or ModeWebhook.
	Mode string

	// WebhookListen is the address the webhook server listens on (":8443").
	WebhookListen string
	// WebhookURL is the public URL Telegram posts updates to.
	WebhookURL string
	// WebhookSecret is sent by Telegram in X-Telegram-Bot-Api-Secret-Token;
	// required in webhook mode: 1-256 characters of A-Z a-z 0-9 _ -.
	WebhookSecret string

	// PollTimeout is getUpdates' long-poll timeout; default 30 s.
	PollTimeout time.Duration
	// RequestTimeout bounds every other Bot API call; default 30 s.
	RequestTimeout time.Duration
	// UpdateTimeout is each update's deadline: its handler's context ends
	// then; default 60 s.
	UpdateTimeout time.Duration
	// Checkpoint keeps the offset and the updates accepted and not yet
	// started, so that a restart loses none and runs none twice; default in
	// memory (lost on restart).
	Checkpoint Checkpoint
	// Limits are the outgoing rate limits; zero fields take Telegram's.
	Limits Limits
	// HTTPClient carries every Bot API call; default a fresh http.Client.
	HTTPClient *http.Client
	// Logger receives one structured line per event that matters; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts updates, sent messages, 429s and outbox depth.
	Metrics *Metrics
}

// Webhook secrets are restricted by Telegram to this alphabet.
var webhookSecretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Token == "" {
		return c, errors.New("telegram: a bot token is required")
	}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if strings.Count(c.Endpoint, "%s") != 2 {
		return c, fmt.Errorf("telegram: endpoint %q must contain two %%s (token, method)", c.Endpoint)
	}
	if c.Mode == "" {
		c.Mode = ModePolling
	}
	switch c.Mode {
	case ModePolling:
	case ModeWebhook:
		if err := c.validateWebhook(); err != nil {
			return c, err
		}
	default:
		return c, fmt.Errorf("telegram: mode %q is neither %q nor %q", c.Mode, ModePolling, ModeWebhook)
	}
	if c.PollTimeout <= 0 {
		c.PollTimeout = 30 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.UpdateTimeout <= 0 {
		c.UpdateTimeout = time.Minute
	}
	if c.Checkpoint == nil {
		c.Checkpoint = &MemoryCheckpoint{}
	}
	c.Limits = c.Limits.withDefaults()
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func (c Config) secrets() Secrets {
	return Secrets{Token: c.Token, WebhookSecret: c.WebhookSecret}
}

func (c Config) validateWebhook() error {
	if !webhookSecretPattern.MatchString(c.WebhookSecret) {
		return errors.New("telegram: webhook mode needs a secret of 1-256 characters A-Z a-z 0-9 _ -")
	}
	if c.WebhookListen == "" {
		return errors.New("telegram: webhook mode needs a listen address")
	}
	u, err := url.Parse(c.WebhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("telegram: webhook URL %q is not an http(s) URL", c.secrets().Redact(c.WebhookURL))
	}
	return nil
}
