package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// unreachableKubeconfig is a kubeconfig for an API server that is not
// there: teleop gets as far as the Telegram check without a cluster.
func unreachableKubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	require.NoError(t, os.WriteFile(path, []byte(kc), 0o600))
	return path
}

// When the bot cannot start, teleop run stops with one line that says what
// failed and which setting to check, and shows no token.
func TestRunSaysWhichTelegramSettingToCheck(t *testing.T) {
	const token = "123456:SECRETleakCANARY"
	emu := telegramemu.New(t, telegramemu.Options{Token: token})
	otherToken := telegramemu.New(t, telegramemu.Options{Token: "654321:OTHER"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/bot%s/%s"
	require.NoError(t, ln.Close())

	tests := []struct {
		name     string
		endpoint string
		fault    *telegramemu.Fault
		want     []string
	}{
		{"connection refused", closed, nil, []string{"/bot<token>/getMe: connection refused", "check --telegram-api-endpoint and the network"}},
		{"no such host", "http://nonexistent.invalid/bot%s/%s", nil, []string{"cannot resolve nonexistent.invalid", "check --telegram-api-endpoint and the network"}},
		{"timeout", emu.Endpoint(), &telegramemu.Fault{Method: "getMe", Count: 1, Delay: 5 * time.Second},
			[]string{"no answer from", "/bot<token>/getMe within 500ms", "check --telegram-api-endpoint and the network"}},
		{"401", otherToken.Endpoint(), nil, []string{"telegram rejected the bot token (401 Unauthorized); check --telegram-token, --telegram-token-file or TELEGRAM_BOT_TOKEN"}},
		{"404", strings.Replace(emu.Endpoint(), "/bot%s", "/api/bot%s", 1), nil, []string{"answered 404 Not Found", "check --telegram-api-endpoint, a Bot API URL format such as https://api.telegram.org/bot%s/%s"}},
		{"502", emu.Endpoint(), &telegramemu.Fault{Method: "getMe", Count: 1, Status: 502}, []string{"/bot<token>/getMe answered 502 Bad Gateway"}},
	}
	kubeconfig := unreachableKubeconfig(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil {
				emu.Fail(*tt.fault)
			}
			var stdout, stderr bytes.Buffer
			code := dispatch([]string{"run", "--kubeconfig", kubeconfig, "--telegram-token", token, "--telegram-api-endpoint", tt.endpoint,
				"--telegram-timeout=500ms", "--metrics-addr=", "--health-addr=", "--log-level=error"}, nil, &stdout, &stderr)
			assert.Equal(t, 1, code)
			out := strings.TrimSpace(stdout.String() + stderr.String())
			for _, want := range tt.want {
				assert.Contains(t, out, want)
			}
			assert.NotContains(t, out, "\n", "one line")
			assert.NotContains(t, out, "SECRETleak")
		})
	}
}
