package bot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// Why New could not start, for errors.Is: each asks to check something else.
var (
	// ErrUnreachable: the endpoint did not answer (connection refused, no
	// such host, no answer in time); check the endpoint and the network.
	ErrUnreachable = errors.New("the Bot API endpoint is unreachable")
	// ErrTokenRejected: Telegram answered 401; check the token.
	ErrTokenRejected = errors.New("the bot token was rejected")
	// ErrNoBotAPI: the endpoint answered 404 to getMe, so it is no Bot API
	// URL format (or the token is malformed); check the endpoint.
	ErrNoBotAPI = errors.New("no Bot API at the endpoint")
)

// startError is New's one-line error: what failed, in words, with its kind
// (nil for a Bot API error other than 401 and 404) and cause for errors.Is
// and errors.As.
type startError struct {
	text  string
	kind  error
	cause error
}

func (e *startError) Error() string { return e.text }
func (e *startError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.cause}
	}
	return []error{e.kind, e.cause}
}

// startError explains a failed getMe; err is already redacted, and so is
// every URL shown.
func (a *api) startError(err error, timeout time.Duration) error {
	where := a.url("getMe")
	var (
		dnsErr *net.DNSError
		netErr net.Error
	)
	switch code := apiCode(err); {
	case code == http.StatusUnauthorized:
		return &startError{"telegram rejected the bot token (401 Unauthorized)", ErrTokenRejected, err}
	case code == http.StatusNotFound:
		return &startError{fmt.Sprintf("telegram: %s answered 404 Not Found: no Bot API there", where), ErrNoBotAPI, err}
	case code != 0:
		var apiErr *APIError
		errors.As(err, &apiErr)
		return &startError{fmt.Sprintf("telegram: %s answered %d %s", where, code, apiErr.Description), nil, err}
	case errors.As(err, &dnsErr):
		return &startError{fmt.Sprintf("telegram: cannot resolve %s for %s: %s", dnsErr.Name, where, dnsErr.Err), ErrUnreachable, err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &startError{fmt.Sprintf("telegram: cannot reach %s: connection refused", where), ErrUnreachable, err}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return &startError{fmt.Sprintf("telegram: no answer from %s within %s", where, timeout), ErrUnreachable, err}
	}
	reason := err.Error()
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		reason = a.redact(urlErr.Err.Error()) // the URL is shown already
	}
	return &startError{fmt.Sprintf("telegram: cannot reach %s: %s", where, reason), ErrUnreachable, err}
}
