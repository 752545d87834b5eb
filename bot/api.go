package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// APIError is a failed Bot API call: Telegram's answer when it gave one
// (Code and Description), otherwise the network error in Err (Code 0).
type APIError struct {
	Method      string
	Code        int
	Description string
	// RetryAfter is Telegram's flood-control wait on a 429.
	RetryAfter time.Duration
	Err        error
}

func (e *APIError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("telegram %s: %v", e.Method, e.Err)
	}
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}

func (e *APIError) Unwrap() error { return e.Err }

// transient reports whether repeating the call later may succeed.
func (e *APIError) transient() bool {
	return e.Code == 0 || e.Code == http.StatusTooManyRequests || e.Code == http.StatusConflict || e.Code >= 500
}

// apiCode returns the Bot API error code of err, 0 when there is none.
func apiCode(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return 0
}

// isTransient reports whether err is worth retrying (network, 409, 429, 5xx).
func isTransient(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.transient()
}

// api performs Bot API calls through the library, each bound to a context so
// that cancelling it aborts the HTTP request in flight. It is the one place
// where requests are made, so it is where the secrets are masked: every
// error it returns has the token and the webhook secret replaced (see
// Secrets), whoever logs, serves or stores it.
type api struct {
	bot      *tgbotapi.BotAPI
	client   *http.Client
	endpoint string
	masker   *strings.Replacer
}

func newAPI(secrets Secrets, endpoint string, client *http.Client) *api {
	b := &tgbotapi.BotAPI{Token: secrets.Token, Client: client, Buffer: 100}
	b.SetAPIEndpoint(endpoint)
	return &api{bot: b, client: client, endpoint: endpoint, masker: secrets.replacer()}
}

// url is the URL of method as it may be shown: with <token> for the token.
func (a *api) url(method string) string {
	return fmt.Sprintf(a.endpoint, tokenMask, method)
}

// redact masks the secrets in text.
func (a *api) redact(text string) string { return a.masker.Replace(text) }

// with returns a copy of the library's client whose requests carry ctx. The
// library predates contexts; its HTTPClient seam is where one fits in.
func (a *api) with(ctx context.Context) *tgbotapi.BotAPI {
	b := *a.bot
	b.Client = ctxClient{ctx: ctx, next: a.client}
	return &b
}

// call runs a raw method with params and classifies any failure as *APIError.
func (a *api) call(ctx context.Context, method string, params tgbotapi.Params) (json.RawMessage, error) {
	resp, err := a.with(ctx).MakeRequest(method, params)
	if err != nil {
		return nil, a.classify(ctx, method, err)
	}
	return resp.Result, nil
}

// request runs one of the library's typed configs; method names it in errors
// (the library keeps the configs' method names to itself).
func (a *api) request(ctx context.Context, method string, c tgbotapi.Chattable) (json.RawMessage, error) {
	resp, err := a.with(ctx).Request(c)
	if err != nil {
		return nil, a.classify(ctx, method, err)
	}
	return resp.Result, nil
}

// classify turns a failed call into a redacted *APIError. A call that ran out
// of its context's time is a network failure like any other (Code 0,
// transient); the caller tells its own shutdown apart by its context.
func (a *api) classify(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		return &APIError{Method: method, Err: ctx.Err()}
	}
	var tgErr *tgbotapi.Error
	if errors.As(err, &tgErr) {
		return &APIError{
			Method: method, Code: tgErr.Code, Description: a.redact(tgErr.Message),
			RetryAfter: time.Duration(tgErr.RetryAfter) * time.Second, Err: a.mask(err),
		}
	}
	var statusErr *httpStatusError
	if errors.As(err, &statusErr) {
		return &APIError{Method: method, Code: statusErr.code, Description: statusErr.status, Err: a.mask(err)}
	}
	return &APIError{Method: method, Err: a.mask(err)}
}

// mask returns err with the secrets masked in its text. Go's *url.Error,
// which carries the request URL and so the token, is masked in place too (it
// is this call's own), so a caller that digs it out with errors.As finds no
// token either.
func (a *api) mask(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		urlErr.URL = a.redact(urlErr.URL)
	}
	return &redactedError{text: a.redact(err.Error()), cause: err}
}

// redactedError is an error whose text has the secrets masked; it unwraps to
// its cause so that errors.Is and errors.As still see what happened.
type redactedError struct {
	text  string
	cause error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.cause }

// ctxClient attaches a context to each request and turns an HTTP error
// status without a Bot API JSON body (a proxy's 502, a server without the
// method) into an error that keeps the status code.
type ctxClient struct {
	ctx  context.Context
	next *http.Client
}

func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req.WithContext(c.ctx))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 && !isJSON(resp.Header.Get("Content-Type")) {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, &httpStatusError{code: resp.StatusCode, status: strings.TrimSpace(http.StatusText(resp.StatusCode))}
	}
	return resp, nil
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

type httpStatusError struct {
	code   int
	status string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d %s", e.code, e.status) }
