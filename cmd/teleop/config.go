package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/approvals"
)

// defaultEndpoint is the public Bot API; a local Bot API server or a test
// emulator is reached by overriding it.
const defaultEndpoint = "https://api.telegram.org/bot%s/%s"

// config is everything `teleop run` and `teleop console` are told at start.
type config struct {
	kubeconfig string
	namespace  string
	watchNS    string
	kubeQPS    float64
	kubeBurst  int
	workers    int

	tokenFile   string
	token       string
	apiEndpoint string
	mode        string
	// telegramTimeout bounds each Bot API call but the long poll's wait.
	telegramTimeout time.Duration

	webhookListen string
	webhookURL    string
	webhookSecret string

	admins      idList
	notifyChats idList

	leaderElect         bool
	metricsAddr         string
	healthAddr          string
	pprofAddr           string
	logFormat           string
	logLevel            string
	logFile             string
	conversationTimeout time.Duration
	// deletionNoticeTimeout bounds, from a TeleApp's deletionTimestamp, the
	// wait for its deletion notice.
	deletionNoticeTimeout time.Duration
	approvalTimeout       time.Duration

	// inbound limits: what one user and one chat may send (per second, burst)
	userRate, chatRate   float64
	userBurst, chatBurst int

	// console only
	consoleAs   int64
	consoleChat int64
}

// idList is a comma-separated list of Telegram IDs.
type idList []int64

func (l *idList) String() string { return strings.Join(l.strings(), ",") }

func (l *idList) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a Telegram ID (a whole number such as 12345 or -100123)", part)
		}
		*l = append(*l, id)
	}
	return nil
}

// strings returns the IDs as decimal strings, as they appear in spec.notify.chats.
func (l idList) strings() []string {
	out := make([]string, len(l))
	for i, id := range l {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}

// envFor names the environment variable behind each flag. Every flag has one;
// an explicitly given flag wins over it.
var envFor = map[string]string{
	"kubeconfig":              "KUBECONFIG",
	"namespace":               "TELEOP_NAMESPACE",
	"watch-namespace":         "TELEOP_WATCH_NAMESPACE",
	"kube-qps":                "TELEOP_KUBE_QPS",
	"kube-burst":              "TELEOP_KUBE_BURST",
	"workers":                 "TELEOP_WORKERS",
	"telegram-token-file":     "TELEGRAM_BOT_TOKEN_FILE",
	"telegram-token":          "TELEGRAM_BOT_TOKEN",
	"telegram-api-endpoint":   "TELEGRAM_API_ENDPOINT",
	"telegram-mode":           "TELEOP_TELEGRAM_MODE",
	"telegram-timeout":        "TELEOP_TELEGRAM_TIMEOUT",
	"webhook-listen":          "TELEOP_WEBHOOK_LISTEN",
	"webhook-url":             "TELEOP_WEBHOOK_URL",
	"webhook-secret":          "TELEOP_WEBHOOK_SECRET",
	"admins":                  "TELEOP_ADMINS",
	"notify-chats":            "TELEOP_NOTIFY_CHATS",
	"leader-elect":            "TELEOP_LEADER_ELECT",
	"metrics-addr":            "TELEOP_METRICS_ADDR",
	"health-addr":             "TELEOP_HEALTH_ADDR",
	"pprof-addr":              "TELEOP_PPROF_ADDR",
	"log-format":              "TELEOP_LOG_FORMAT",
	"log-level":               "TELEOP_LOG_LEVEL",
	"log-file":                "TELEOP_LOG_FILE",
	"approval-timeout":        "TELEOP_APPROVAL_TIMEOUT",
	"conversation-timeout":    "TELEOP_CONVERSATION_TIMEOUT",
	"user-rate":               "TELEOP_USER_RATE",
	"user-burst":              "TELEOP_USER_BURST",
	"chat-rate":               "TELEOP_CHAT_RATE",
	"chat-burst":              "TELEOP_CHAT_BURST",
	"deletion-notice-timeout": "TELEOP_DELETION_NOTICE_TIMEOUT",
	"deployment":              "TELEOP_UNINSTALL_DEPLOYMENT",
	"timeout":                 "TELEOP_UNINSTALL_TIMEOUT",
	"as":                      "TELEOP_CONSOLE_AS",
	"chat":                    "TELEOP_CONSOLE_CHAT",
}

// newFlagSet declares the flags shared by run and console, plus the console's
// own when console is true.
func newFlagSet(name string, c *config, console bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster config when empty")
	fs.StringVar(&c.namespace, "namespace", "teleop-system", "namespace of teleop's own state and leader lease")
	fs.StringVar(&c.watchNS, "watch-namespace", "", "reconcile only the TeleApps of this namespace; all when empty")
	fs.Float64Var(&c.kubeQPS, "kube-qps", operator.DefaultQPS, "API server queries per second")
	fs.IntVar(&c.kubeBurst, "kube-burst", operator.DefaultBurst, "API server burst")
	fs.IntVar(&c.workers, "workers", operator.DefaultWorkers, "reconcile workers")
	fs.StringVar(&c.tokenFile, "telegram-token-file", "", "file holding the bot token")
	fs.StringVar(&c.token, "telegram-token", "", "bot token; without one, run is operator-only")
	fs.StringVar(&c.apiEndpoint, "telegram-api-endpoint", defaultEndpoint, "Bot API URL format (token, method)")
	fs.StringVar(&c.mode, "telegram-mode", "polling", "polling or webhook")
	fs.DurationVar(&c.telegramTimeout, "telegram-timeout", 30*time.Second, "how long a Bot API call may take (the long poll waits this much longer)")
	fs.StringVar(&c.webhookListen, "webhook-listen", ":8443", "address the webhook server listens on")
	fs.StringVar(&c.webhookURL, "webhook-url", "", "public HTTPS URL Telegram posts updates to")
	fs.StringVar(&c.webhookSecret, "webhook-secret", "", "secret checked against X-Telegram-Bot-Api-Secret-Token")
	fs.Var(&c.admins, "admins", "comma-separated Telegram user IDs always allowed everything")
	fs.Var(&c.notifyChats, "notify-chats", "comma-separated chat IDs told about every TeleApp")
	fs.BoolVar(&c.leaderElect, "leader-elect", false, "elect a leader through a Lease in --namespace")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":8080", "address of /metrics; empty disables")
	fs.StringVar(&c.healthAddr, "health-addr", ":8081", "address of /healthz and /readyz; empty disables")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "address of Go's /debug/pprof profiles; empty (the default) disables")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFile, "log-file", "", "file logs are appended to; stderr when empty (console: "+consoleLogFile()+" unless --log-level is given)")
	fs.DurationVar(&c.conversationTimeout, "conversation-timeout", 10*time.Minute, "how long an idle conversation stays open")
	fs.Float64Var(&c.userRate, "user-rate", bot.DefaultUserRate, "updates per second one Telegram user may send; more are dropped")
	fs.IntVar(&c.userBurst, "user-burst", bot.DefaultUserBurst, "updates one Telegram user may send at once")
	fs.Float64Var(&c.chatRate, "chat-rate", bot.DefaultChatRate, "updates per second one chat may send; more are dropped")
	fs.IntVar(&c.chatBurst, "chat-burst", bot.DefaultChatBurst, "updates one chat may send at once")
	fs.DurationVar(&c.deletionNoticeTimeout, "deletion-notice-timeout", announce.DefaultDeletionNoticeTimeout,
		"how long after its deletion a TeleApp waits for its deletion notice before it goes untold")
	fs.DurationVar(&c.approvalTimeout, "approval-timeout", approvals.DefaultTimeout, "how long a change waits for a second person's approval")
	if console {
		fs.Int64Var(&c.consoleAs, "as", 0, "Telegram user ID to act as (default: an admin)")
		fs.Int64Var(&c.consoleChat, "chat", 0, "chat ID of the console (default: the user's private chat)")
	}
	return fs
}

// parseConfig parses args, fills unset flags from the environment and checks
// the result, so a bad setting stops teleop before it touches anything.
func parseConfig(name string, args []string, console bool, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := newFlagSet(name, c, console)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if console && c.logFile == "" && !given(fs, getenv, "log-level") {
		// The console's screen is the chat: logs would interleave with it.
		c.logFile = consoleLogFile()
	}
	if err := c.loadToken(); err != nil {
		return nil, err
	}
	return c, c.validate()
}

// consoleLogFile is where the console logs unless told otherwise.
func consoleLogFile() string { return filepath.Join(os.TempDir(), "teleop-console.log") }

// given reports whether the flag name was set, on the command line or
// through its environment variable.
func given(fs *flag.FlagSet, getenv func(string) string, name string) bool {
	set := getenv(envFor[name]) != ""
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := envFor[f.Name]
		value := getenv(env)
		if given[f.Name] || env == "" || value == "" {
			return
		}
		if err := fs.Set(f.Name, value); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, value, err))
		}
	})
	return errors.Join(errs...)
}

func (c *config) loadToken() error {
	if c.tokenFile == "" {
		return nil
	}
	data, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return fmt.Errorf("read --telegram-token-file: %w", err)
	}
	c.token = strings.TrimSpace(string(data))
	if c.token == "" {
		return fmt.Errorf("--telegram-token-file %s is empty", c.tokenFile)
	}
	return nil
}

func (c *config) validate() error {
	switch {
	case c.mode != "polling" && c.mode != "webhook":
		return fmt.Errorf("--telegram-mode must be polling or webhook, not %q", c.mode)
	case c.token != "" && strings.ContainsAny(c.token, " \t\n/"):
		return fmt.Errorf("the Telegram token has spaces or slashes; expected the form 123456:ABC-DEF")
	case c.logFormat != "text" && c.logFormat != "json":
		return fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)
	case strings.Count(c.apiEndpoint, "%s") != 2:
		return fmt.Errorf("--telegram-api-endpoint must contain two %%s (token, method), e.g. %s", defaultEndpoint)
	case c.workers < 1:
		return fmt.Errorf("--workers must be at least 1")
	case c.telegramTimeout <= 0:
		return fmt.Errorf("--telegram-timeout must be positive")
	case c.conversationTimeout < time.Second:
		return fmt.Errorf("--conversation-timeout must be at least 1s")
	case c.userRate <= 0 || c.chatRate <= 0 || c.userBurst < 1 || c.chatBurst < 1:
		return fmt.Errorf("--user-rate and --chat-rate must be above 0, --user-burst and --chat-burst at least 1")
	case c.deletionNoticeTimeout < time.Second:
		return fmt.Errorf("--deletion-notice-timeout must be at least 1s")
	case c.approvalTimeout < time.Second:
		return fmt.Errorf("--approval-timeout must be at least 1s")
	case c.namespace == "":
		return fmt.Errorf("--namespace is empty")
	case new(slog.Level).UnmarshalText([]byte(c.logLevel)) != nil:
		return fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.logLevel)
	}
	if c.mode == "webhook" && c.token != "" {
		return c.validateWebhook()
	}
	return nil
}

// secrets are the values no log line or error may show.
func (c *config) secrets() bot.Secrets {
	return bot.Secrets{Token: c.token, WebhookSecret: c.webhookSecret}
}

func (c *config) validateWebhook() error {
	if c.webhookSecret == "" {
		return fmt.Errorf("webhook mode needs --webhook-secret (TELEOP_WEBHOOK_SECRET)")
	}
	if !validSecretToken(c.webhookSecret) {
		return fmt.Errorf("--webhook-secret must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
	}
	u, err := url.Parse(c.webhookURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("webhook mode needs --webhook-url, an absolute URL (https for Telegram; http for a local Bot API server), not %q", c.secrets().Redact(c.webhookURL))
	}
	return nil
}

func validSecretToken(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}
