package bot

import (
	"html"
	"strings"
	"unicode"
)

// EscapeHTML makes user input safe to show in Telegram HTML: valid UTF-8,
// without the control characters Telegram refuses, and HTML-escaped.
func EscapeHTML(s string) string {
	return html.EscapeString(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD")))
}

// Bold is s, escaped, in bold.
func Bold(s string) string { return "<b>" + EscapeHTML(s) + "</b>" }

// Code is s, escaped, in monospace.
func Code(s string) string { return "<code>" + EscapeHTML(s) + "</code>" }
