package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// canaryToken is a token recognisable wherever it might leak.
const (
	canaryToken  = "123456:SECRETleakCANARY"
	canarySecret = "hookSECRETcanary"
)

// answering is a Bot API endpoint that answers every call with status and body.
func answering(t *testing.T, status int, contentType, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/bot%s/%s"
}

// apiAnswering is an endpoint answering with a Bot API error.
func apiAnswering(t *testing.T, code int, description string) string {
	return answering(t, code, "application/json", fmt.Sprintf(`{"ok":false,"error_code":%d,"description":%q}`, code, description))
}

// closedPort is an endpoint on a port nobody listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + "/bot%s/%s"
}

// hanging is an endpoint that never answers.
func hanging(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(srv.Close)
	return srv.URL + "/bot%s/%s"
}

// hangingUp is an endpoint that closes each connection without answering.
func hangingUp(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/bot%s/%s"
}

// Each way getMe can fail at start gets its own one line that says what
// happened, shows the endpoint with <token> in place of the token, and
// carries a kind that tells what to check.
func TestNewSaysWhatFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		want     []string
		kind     error
	}{
		{"connection refused", closedPort, []string{"cannot reach http://127.0.0.1:", "/bot<token>/getMe: connection refused"}, ErrUnreachable},
		{"no such host", func(*testing.T) string { return "http://nonexistent.invalid/bot%s/%s" },
			[]string{"cannot resolve nonexistent.invalid for http://nonexistent.invalid/bot<token>/getMe"}, ErrUnreachable},
		{"timeout", hanging, []string{"no answer from http://127.0.0.1:", "/bot<token>/getMe within 300ms"}, ErrUnreachable},
		{"connection dropped", hangingUp, []string{"cannot reach http://127.0.0.1:", "/bot<token>/getMe: EOF"}, ErrUnreachable},
		{"401", func(t *testing.T) string { return apiAnswering(t, 401, "Unauthorized") },
			[]string{"telegram rejected the bot token (401 Unauthorized)"}, ErrTokenRejected},
		{"404 from a Bot API", func(t *testing.T) string { return apiAnswering(t, 404, "Not Found") },
			[]string{"/bot<token>/getMe answered 404 Not Found: no Bot API there"}, ErrNoBotAPI},
		{"404 from a web server", func(t *testing.T) string { return answering(t, 404, "text/html", "<h1>nope</h1>") },
			[]string{"/bot<token>/getMe answered 404 Not Found: no Bot API there"}, ErrNoBotAPI},
		{"502 from a proxy", func(t *testing.T) string { return answering(t, 502, "text/html", "bad gateway") },
			[]string{"/bot<token>/getMe answered 502 Bad Gateway"}, nil},
		{"500 echoing the request", func(t *testing.T) string { return apiAnswering(t, 500, "Internal error at /bot"+canaryToken+"/getMe") },
			[]string{"/bot<token>/getMe answered 500 Internal error at /bot<token>/getMe"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(Config{Token: canaryToken, Endpoint: tt.endpoint(t), RequestTimeout: 300 * time.Millisecond, Logger: testLogger(t)})
			require.Error(t, err)
			text := err.Error()
			for _, want := range tt.want {
				assert.Contains(t, text, want)
			}
			assert.NotContains(t, text, "SECRETleak", "the token leaked")
			assert.NotContains(t, text, "\n", "one line")
			for _, kind := range []error{ErrUnreachable, ErrTokenRejected, ErrNoBotAPI} {
				assert.Equal(t, kind == tt.kind, errors.Is(err, kind), "errors.Is(%v)", kind)
			}
		})
	}
}

// A failed call's error holds no secret, also where a caller digs out the
// underlying *url.Error, and it still unwraps to what happened.
func TestCallErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		cause    error
	}{
		{"connection refused", closedPort, syscall.ECONNREFUSED},
		{"connection dropped", hangingUp, io.EOF},
		{"description echoing the token and secret", func(t *testing.T) string {
			return apiAnswering(t, 400, "bad webhook /bot"+canaryToken+" "+canarySecret+" "+url.QueryEscape(canaryToken))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAPI(Secrets{Token: canaryToken, WebhookSecret: canarySecret}, tt.endpoint(t), &http.Client{})
			_, err := a.call(context.Background(), "setWebhook", nil)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "SECRETleak")
			assert.NotContains(t, err.Error(), canarySecret)
			var urlErr *url.Error
			if errors.As(err, &urlErr) {
				assert.Contains(t, urlErr.Error(), "/bot<token>/setWebhook")
				assert.NotContains(t, urlErr.Error(), "SECRETleak")
			}
			if tt.cause != nil {
				assert.ErrorIs(t, err, tt.cause)
			}
			assert.True(t, isTransient(err) == (apiCode(err) == 0), "network failures are transient, a 400 is not")
		})
	}
}

// A call cut short by its own deadline is a transient network failure, so a
// poller retries it instead of stopping for good.
func TestCallTimeoutIsTransient(t *testing.T) {
	t.Parallel()
	a := newAPI(Secrets{Token: canaryToken}, hanging(t), &http.Client{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := a.call(ctx, "getUpdates", nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, isTransient(err))
}

func TestSecretsRedact(t *testing.T) {
	t.Parallel()
	s := Secrets{Token: "123:a+b c", WebhookSecret: "hook-1"}
	tests := []struct{ in, want string }{
		{"https://api/bot123:a+b c/getMe", "https://api/bot<token>/getMe"},
		{"path " + url.PathEscape(s.Token), "path <token>"},
		{"query " + url.QueryEscape(s.Token), "query <token>"},
		{"https://me.example/hook/hook-1?x=1", "https://me.example/hook/<webhook-secret>?x=1"},
		{"nothing secret", "nothing secret"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, s.Redact(tt.in))
	}
	assert.Equal(t, "left alone", Secrets{}.Redact("left alone"), "no secrets, nothing replaced")
}
