// Package telegramemu is a Telegram Bot API emulator for tests. It speaks the
// wire format of https://core.telegram.org/bots/api (form-encoded, query or
// JSON requests to /bot<token>/<method>; {"ok":...} JSON answers), so the
// real bot transport runs against it unchanged via --telegram-api-endpoint.
//
// A test plays the users (SendText, PressButton), reads what the bot sent
// (Messages, WaitMessage, CallbackAnswer) and can make the API misbehave
// (Fail, MarkBlocked, MarkUnknown). The emulator enforces Telegram's rules so
// the bot is tested against them: one getUpdates at a time, no getUpdates
// while a webhook is set, message and callback_data sizes, HTML that parses,
// and flood limits answered with 429 and retry_after.
//
// Where it differs from Telegram, knowingly:
//   - Message length is counted like Telegram, in UTF-16 code units of the
//     text after HTML parsing; but a bare '&' that starts no entity is
//     refused (Telegram keeps it), so a bot that forgets to escape is caught.
//   - Only parse_mode HTML is understood; Markdown modes answer 400.
//   - Answers carry the parsed text but no formatting entities; user
//     messages carry the bot_command entity bot libraries rely on.
//   - Webhooks may be plain http (tests), and updates are delivered one at a
//     time in order, whatever max_connections says; retries back off from
//     Options.WebhookRetry to 2 s instead of Telegram's minutes.
//   - Edits count toward the flood limits like new messages.
//   - 5xx answers are JSON, where Telegram's front end may answer HTML.
package telegramemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server; the zero value is a usable default.
type Options struct {
	// Token is the bot token the emulator accepts; default "123456:TEST".
	Token string
	// BotUsername is what getMe reports; default "teleop_bot".
	BotUsername string
	// Limits are the flood limits; the zero value means DefaultLimits.
	Limits Limits
	// Now is the clock for flood limits, fault deadlines and message dates;
	// default time.Now. Long polling and webhook retries use real time.
	Now func() time.Time
	// WebhookRetry is the first delay before a failed webhook delivery is
	// retried; it doubles up to 2 s. Default 50 ms (Telegram waits longer).
	WebhookRetry time.Duration
	// ListenAddr is where the emulator listens (host:port); a free loopback
	// port when empty. A pod on the real node reaches cluster.RealNodeIP.
	ListenAddr string
}

// Stats are counters a test can assert on.
type Stats struct {
	// Requests counts every request by method name, faulted ones included.
	Requests map[string]int
	// TooManyRequests counts every 429 returned, injected ones included.
	TooManyRequests int
	// RateLimited counts the 429s caused by the flood limits alone.
	RateLimited int
	// PollConflicts counts getUpdates requests ended with 409 because another
	// getUpdates request arrived.
	PollConflicts int
	// MaxConcurrentPolls is the most getUpdates requests seen in flight at once.
	MaxConcurrentPolls int
	// FaultsInjected counts requests answered by a Fault.
	FaultsInjected int
	// WebhookDeliveries counts updates the webhook accepted (2xx);
	// WebhookFailures counts delivery attempts that failed.
	WebhookDeliveries int
	WebhookFailures   int
}

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	http *httptest.Server
	opts Options
	bot  wireUser

	closeOnce sync.Once
	closed    chan struct{}
	// webhookMu serialises setWebhook/deleteWebhook so only one deliverer runs.
	webhookMu sync.Mutex

	mu          sync.Mutex
	stats       Stats
	faults      []*activeFault
	limiter     *limiter
	chats       map[int64]*chatState
	updates     []wireUpdate // not yet confirmed (polling) or delivered (webhook)
	nextUpdate  int64
	updateAdded chan struct{} // closed and replaced whenever updates change
	changed     chan struct{} // closed and replaced whenever a bot message changes
	poll        *poll         // the getUpdates request in flight, if any
	polls       int           // getUpdates requests in flight
	webhook     *webhook
	callbacks   map[string]*callback
	nextQuery   int64
	commands    []BotCommand
}

// New starts an emulator on loopback; it is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "123456:TEST"
	}
	if opts.BotUsername == "" {
		opts.BotUsername = "teleop_bot"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WebhookRetry <= 0 {
		opts.WebhookRetry = 50 * time.Millisecond
	}
	botID, err := botIDOf(opts.Token)
	if err != nil {
		t.Fatalf("telegramemu: %v", err)
	}
	s := &Server{
		t:           t,
		opts:        opts,
		bot:         wireUser{ID: botID, IsBot: true, FirstName: "teleop", Username: opts.BotUsername, CanJoinGroups: true},
		closed:      make(chan struct{}),
		stats:       Stats{Requests: map[string]int{}},
		limiter:     newLimiter(opts.Limits),
		chats:       map[int64]*chatState{},
		nextUpdate:  100001,
		updateAdded: make(chan struct{}),
		changed:     make(chan struct{}),
		callbacks:   map[string]*callback{},
		nextQuery:   4200000000000000001,
	}
	s.http = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if opts.ListenAddr != "" {
		l, err := net.Listen("tcp", opts.ListenAddr)
		if err != nil {
			t.Fatalf("telegramemu: listen on %s: %v", opts.ListenAddr, err)
		}
		s.http.Listener.Close()
		s.http.Listener = l
	}
	s.http.Start()
	t.Cleanup(s.Close)
	return s
}

// botIDOf reads the bot's user ID from a token "<id>:<secret>", as Telegram's are.
func botIDOf(token string) (int64, error) {
	id, secret, found := strings.Cut(token, ":")
	n, err := strconv.ParseInt(id, 10, 64)
	if !found || err != nil || n <= 0 || secret == "" || strings.Contains(secret, "/") {
		return 0, fmt.Errorf("token %q is not <bot id>:<secret>", token)
	}
	return n, nil
}

// Endpoint is the Bot API URL format for --telegram-api-endpoint.
func (s *Server) Endpoint() string { return s.http.URL + "/bot%s/%s" }

// Token is the bot token the emulator accepts.
func (s *Server) Token() string { return s.opts.Token }

// Close ends long polls and webhook deliveries and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.stopWebhook()
		s.http.Close()
	})
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	return st
}

// apiError is a Bot API error answer.
type apiError struct {
	code        int
	description string
	retryAfter  int
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.code, e.description) }

func badRequest(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, description: "Bad Request: " + fmt.Sprintf(format, args...)}
}

func tooManyRequests(retryAfter int) *apiError {
	return &apiError{code: http.StatusTooManyRequests, description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), retryAfter: retryAfter}
}

// method handles one Bot API call with its parameters and returns the result.
type method func(s *Server, ctx context.Context, p params) (any, *apiError)

type methodSpec struct {
	name    string
	handler method
}

// indexMethods keys handlers by lower-case name: Telegram ignores case.
func indexMethods(byName map[string]method) map[string]methodSpec {
	index := make(map[string]methodSpec, len(byName))
	for name, h := range byName {
		index[strings.ToLower(name)] = methodSpec{name: name, handler: h}
	}
	return index
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	token, methodName, ok := splitPath(r.URL.Path)
	if !ok {
		writeError(w, &apiError{code: http.StatusNotFound, description: "Not Found"})
		return
	}
	if token != s.opts.Token {
		writeError(w, &apiError{code: http.StatusUnauthorized, description: "Unauthorized"})
		return
	}
	m, known := methods[strings.ToLower(methodName)]
	name := methodName
	if known {
		name = m.name
	}
	s.mu.Lock()
	s.stats.Requests[name]++
	fault, faulted := s.takeFault(name)
	s.mu.Unlock()
	if faulted && !s.injure(w, r, fault) {
		return
	}
	if !known {
		writeError(w, &apiError{code: http.StatusNotFound, description: "Not Found"})
		return
	}
	p, err := readParams(r)
	if err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	result, apiErr := m.handler(s, r.Context(), p)
	if apiErr != nil {
		s.countError(apiErr)
		writeError(w, apiErr)
		return
	}
	writeJSON(w, http.StatusOK, okResponse{Ok: true, Result: result})
}

// splitPath splits "/bot<token>/<method>".
func splitPath(path string) (token, method string, ok bool) {
	rest, found := strings.CutPrefix(path, "/bot")
	if !found {
		return "", "", false
	}
	token, method, found = strings.Cut(rest, "/")
	return token, method, found && method != "" && !strings.Contains(method, "/")
}

func (s *Server) countError(e *apiError) {
	if e.code != http.StatusTooManyRequests {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.TooManyRequests++
}

// params are a request's parameters, from the query, a form or a JSON body.
type params map[string]string

// maxBody bounds request bodies like Telegram's front end does (sort of).
const maxBody = 10 << 20

func readParams(r *http.Request) (params, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		obj, err := rawParams(body)
		if err != nil {
			return nil, fmt.Errorf("can't parse JSON body: %w", err)
		}
		for k, v := range obj {
			p[k] = v
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		if err := r.ParseMultipartForm(maxBody); err != nil && err != http.ErrNotMultipart {
			return nil, fmt.Errorf("can't parse request: %w", err)
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	}
	return p, nil
}

func (p params) int64(name string) (int64, *apiError) {
	v, ok := p[name]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("invalid %s specified", name)
	}
	return n, nil
}

func (p params) bool(name string) bool {
	b, _ := strconv.ParseBool(p[name])
	return b
}

func writeError(w http.ResponseWriter, e *apiError) {
	resp := errorResponse{ErrorCode: e.code, Description: e.description}
	if e.retryAfter > 0 {
		resp.Parameters = &responseParameters{RetryAfter: e.retryAfter}
	}
	writeJSON(w, e.code, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up: nothing to do
}
