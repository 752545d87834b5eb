package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseConfigAccepts(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("123:file-token\n"), 0o600))

	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c *config) {
				assert.Equal(t, "polling", c.mode)
				assert.Equal(t, "teleop-system", c.namespace)
				assert.Equal(t, defaultEndpoint, c.apiEndpoint)
				assert.Empty(t, c.token)
				assert.Equal(t, 60*time.Second, c.deletionNoticeTimeout)
			},
		},
		{
			name: "environment fills unset flags",
			env:  map[string]string{"TELEGRAM_BOT_TOKEN": "1:env", "TELEOP_ADMINS": "1, 2", "TELEOP_LEADER_ELECT": "true", "TELEOP_NAMESPACE": "ops"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, "1:env", c.token)
				assert.Equal(t, idList{1, 2}, c.admins)
				assert.True(t, c.leaderElect)
				assert.Equal(t, "ops", c.namespace)
			},
		},
		{
			name: "the flag wins over the environment",
			args: []string{"--namespace=flag", "--telegram-token=1:flag"},
			env:  map[string]string{"TELEOP_NAMESPACE": "env", "TELEGRAM_BOT_TOKEN": "1:env"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, "flag", c.namespace)
				assert.Equal(t, "1:flag", c.token)
			},
		},
		{
			name:  "token file",
			args:  []string{"--telegram-token-file", tokenFile},
			check: func(t *testing.T, c *config) { assert.Equal(t, "123:file-token", c.token) },
		},
		{
			name: "webhook mode with secret and url",
			args: []string{"--telegram-token=1:x", "--telegram-mode=webhook", "--webhook-secret=s3cr-et_", "--webhook-url=https://bot.example.com/hook"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, "webhook", c.mode)
			},
		},
		{
			name:  "deletion notice timeout from the environment",
			env:   map[string]string{"TELEOP_DELETION_NOTICE_TIMEOUT": "5s"},
			check: func(t *testing.T, c *config) { assert.Equal(t, 5*time.Second, c.deletionNoticeTimeout) },
		},
		{
			name:  "notify chats keep negative group IDs",
			args:  []string{"--notify-chats=-100123,42"},
			check: func(t *testing.T, c *config) { assert.Equal(t, []string{"-100123", "42"}, c.notifyChats.strings()) },
		},
		{
			name: "inbound limits from flags and environment",
			args: []string{"--user-rate=0.5", "--chat-burst=50"},
			env:  map[string]string{"TELEOP_USER_BURST": "4", "TELEOP_CHAT_RATE": "7"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, []float64{0.5, 7}, []float64{c.userRate, c.chatRate})
				assert.Equal(t, []int{4, 50}, []int{c.userBurst, c.chatBurst})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("run", tt.args, false, envOf(tt.env))
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestParseConfigRefuses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "bad mode", args: []string{"--telegram-mode=carrier-pigeon"}, wantErr: "--telegram-mode must be polling or webhook"},
		{name: "bad mode from env", env: map[string]string{"TELEOP_TELEGRAM_MODE": "smoke"}, wantErr: "--telegram-mode must be polling or webhook"},
		{name: "webhook without secret", args: []string{"--telegram-token=1:x", "--telegram-mode=webhook", "--webhook-url=https://x.example/h"}, wantErr: "needs --webhook-secret"},
		{name: "webhook secret with bad characters", args: []string{"--telegram-token=1:x", "--telegram-mode=webhook", "--webhook-secret=a b", "--webhook-url=https://x.example/h"}, wantErr: "Telegram's rule"},
		{name: "webhook url shown without the token", args: []string{"--telegram-token=1:SECRETleak", "--telegram-mode=webhook", "--webhook-secret=hook", "--webhook-url=ftp://x.example/1:SECRETleak/hook"}, wantErr: `not "ftp://x.example/<token>/<webhook-secret>"`},
		{name: "zero telegram timeout", args: []string{"--telegram-timeout=0s"}, wantErr: "--telegram-timeout must be positive"},
		{name: "webhook without url", args: []string{"--telegram-token=1:x", "--telegram-mode=webhook", "--webhook-secret=abc"}, wantErr: "needs --webhook-url"},
		{name: "unreadable token file", args: []string{"--telegram-token-file=/nonexistent/token"}, wantErr: "read --telegram-token-file"},
		{name: "malformed admin IDs", args: []string{"--admins=12,bob"}, wantErr: `"bob" is not a Telegram ID`},
		{name: "malformed admin IDs from env", env: map[string]string{"TELEOP_ADMINS": "12;13"}, wantErr: "TELEOP_ADMINS"},
		{name: "token with spaces", args: []string{"--telegram-token=12 34"}, wantErr: "spaces or slashes"},
		{name: "endpoint without placeholders", args: []string{"--telegram-api-endpoint=http://127.0.0.1:1/"}, wantErr: "two %s"},
		{name: "bad log format", args: []string{"--log-format=xml"}, wantErr: "--log-format"},
		{name: "zero user rate", args: []string{"--user-rate=0"}, wantErr: "--user-rate and --chat-rate must be above 0"},
		{name: "zero chat burst from env", env: map[string]string{"TELEOP_CHAT_BURST": "0"}, wantErr: "--chat-burst at least 1"},
		{name: "deletion notice timeout under a second", args: []string{"--deletion-notice-timeout=500ms"}, wantErr: "--deletion-notice-timeout must be at least 1s"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("run", tt.args, false, envOf(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestConsoleLogsToAFile: the console's screen is the chat, so its logs go
// to a file unless a log level or file is asked for; run logs to stderr.
func TestConsoleLogsToAFile(t *testing.T) {
	tests := []struct {
		name    string
		console bool
		args    []string
		env     map[string]string
		want    string
	}{
		{name: "console by default", console: true, want: consoleLogFile()},
		{name: "console with --log-level", console: true, args: []string{"--log-level=debug"}, want: ""},
		{name: "console with TELEOP_LOG_LEVEL", console: true, env: map[string]string{"TELEOP_LOG_LEVEL": "warn"}, want: ""},
		{name: "console with --log-file", console: true, args: []string{"--log-file=/tmp/x.log"}, want: "/tmp/x.log"},
		{name: "run by default", want: ""},
		{name: "run with TELEOP_LOG_FILE", env: map[string]string{"TELEOP_LOG_FILE": "/var/log/teleop.log"}, want: "/var/log/teleop.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("x", tt.args, tt.console, envOf(tt.env))
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.logFile)
		})
	}
}

func TestParseUninstall(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    uninstallConfig
		wantErr string
	}{
		{name: "defaults", want: uninstallConfig{namespace: "teleop-system", deployment: "teleop", timeout: 2 * time.Minute}},
		{
			name: "environment and flags",
			args: []string{"--deployment=", "--watch-namespace=web"},
			env:  map[string]string{"TELEOP_NAMESPACE": "ops", "TELEOP_UNINSTALL_TIMEOUT": "30s", "KUBECONFIG": "/k"},
			want: uninstallConfig{kubeconfig: "/k", namespace: "ops", watchNS: "web", timeout: 30 * time.Second},
		},
		{name: "no namespace for the Deployment", args: []string{"--namespace="}, wantErr: "--namespace is empty"},
		{name: "bad timeout", args: []string{"--timeout=0s"}, wantErr: "--timeout must be positive"},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseUninstall(tt.args, envOf(tt.env))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, *c)
		})
	}
}
