package bot

import (
	"net/url"
	"strings"
)

// Masks shown in place of the secrets.
const (
	tokenMask         = "<token>"
	webhookSecretMask = "<webhook-secret>"
)

// Secrets are what must never leave the process: not in a log line, an
// error, a probe body, a metric, an Event or an object. The transport masks
// them in every error of a Bot API call; Redact is for the few texts made
// elsewhere that may hold them (a webhook URL with the token in its path).
type Secrets struct {
	Token         string
	WebhookSecret string
}

// Redact returns text with the token replaced by <token> and the webhook
// secret by <webhook-secret>, as written and URL-escaped.
func (s Secrets) Redact(text string) string { return s.replacer().Replace(text) }

func (s Secrets) replacer() *strings.Replacer {
	var pairs []string
	for _, secret := range []struct{ value, mask string }{
		{s.Token, tokenMask},
		{s.WebhookSecret, webhookSecretMask},
	} {
		if secret.value == "" {
			continue // an empty "old" string would match everywhere
		}
		for _, form := range []string{secret.value, url.PathEscape(secret.value), url.QueryEscape(secret.value)} {
			pairs = append(pairs, form, secret.mask)
		}
	}
	return strings.NewReplacer(pairs...)
}
