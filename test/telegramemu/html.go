package telegramemu

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// allowedTags are the HTML tags Telegram's parse_mode HTML accepts.
var allowedTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "code": true, "pre": true, "blockquote": true,
}

// parseHTML parses text with Telegram's HTML rules and returns the plain text
// the user would see. The error text follows Telegram's "can't parse
// entities" messages. It is stricter than Telegram in one respect: a bare '&'
// that starts no entity is refused, so a bot that forgets to escape is caught.
func parseHTML(text string) (string, error) {
	var plain strings.Builder
	var open []string
	for i := 0; i < len(text); {
		switch text[i] {
		case '&':
			r, n, ok := decodeEntity(text[i:])
			if !ok {
				return "", fmt.Errorf("character '&' at byte offset %d starts no entity; escape it as &amp;", i)
			}
			plain.WriteRune(r)
			i += n
		case '<':
			if strings.HasPrefix(text[i:], "</") {
				n, err := closeTag(text, i, &open)
				if err != nil {
					return "", err
				}
				i += n
				continue
			}
			name, n, err := startTag(text, i)
			if err != nil {
				return "", err
			}
			open = append(open, name)
			i += n
		default:
			plain.WriteByte(text[i])
			i++
		}
	}
	if len(open) > 0 {
		return "", fmt.Errorf("can't find end tag corresponding to start tag %q", open[len(open)-1])
	}
	return plain.String(), nil
}

// decodeEntity decodes the entity at the start of s: &lt; &gt; &amp; &quot;
// or a numeric one, returning the rune and the bytes consumed.
func decodeEntity(s string) (rune, int, bool) {
	end := strings.IndexByte(s, ';')
	if end < 0 || end > 12 {
		return 0, 0, false
	}
	switch name := s[1:end]; name {
	case "lt":
		return '<', end + 1, true
	case "gt":
		return '>', end + 1, true
	case "amp":
		return '&', end + 1, true
	case "quot":
		return '"', end + 1, true
	default:
		if !strings.HasPrefix(name, "#") || len(name) < 2 {
			return 0, 0, false
		}
		digits, base := name[1:], 10
		if digits[0] == 'x' || digits[0] == 'X' {
			digits, base = digits[1:], 16
		}
		cp, err := strconv.ParseUint(digits, base, 32)
		if err != nil || digits == "" || !utf8.ValidRune(rune(cp)) || cp == 0 {
			return 0, 0, false
		}
		return rune(cp), end + 1, true
	}
}

// startTag parses the start tag at text[at] and returns its name and length.
func startTag(text string, at int) (string, int, error) {
	i := at + 1
	for i < len(text) && isTagNameByte(text[i]) {
		i++
	}
	name := strings.ToLower(text[at+1 : i])
	if !allowedTags[name] {
		return "", 0, fmt.Errorf("unsupported start tag %q at byte offset %d", name, at)
	}
	attrs := map[string]string{}
	for {
		for i < len(text) && isSpace(text[i]) {
			i++
		}
		if i >= len(text) {
			return "", 0, fmt.Errorf("unclosed start tag at byte offset %d", at)
		}
		if text[i] == '>' {
			i++
			break
		}
		attr, value, n, err := attribute(text, i)
		if err != nil {
			return "", 0, fmt.Errorf("%w in start tag at byte offset %d", err, at)
		}
		attrs[attr] = value
		i += n
	}
	if name == "span" && attrs["class"] != "tg-spoiler" {
		return "", 0, fmt.Errorf("tag \"span\" must have class \"tg-spoiler\" at byte offset %d", at)
	}
	return name, i - at, nil
}

// attribute parses name[=value] at text[i]; the value may be quoted or not.
func attribute(text string, i int) (name, value string, n int, err error) {
	start := i
	for i < len(text) && isTagNameByte(text[i]) {
		i++
	}
	if i == start {
		return "", "", 0, fmt.Errorf("unexpected character %q", text[i])
	}
	name = strings.ToLower(text[start:i])
	if i >= len(text) || text[i] != '=' {
		return name, "", i - start, nil
	}
	i++
	if i >= len(text) {
		return "", "", 0, fmt.Errorf("unclosed attribute %q", name)
	}
	if q := text[i]; q == '"' || q == '\'' {
		end := strings.IndexByte(text[i+1:], q)
		if end < 0 {
			return "", "", 0, fmt.Errorf("unclosed value of attribute %q", name)
		}
		raw := text[i+1 : i+1+end]
		decoded, err := parseHTML(raw)
		if err != nil {
			return "", "", 0, fmt.Errorf("value of attribute %q: %w", name, err)
		}
		return name, decoded, i + 1 + end + 1 - start, nil
	}
	vstart := i
	for i < len(text) && !isSpace(text[i]) && text[i] != '>' {
		i++
	}
	return name, text[vstart:i], i - start, nil
}

// closeTag parses the end tag at text[at] against the innermost open tag.
func closeTag(text string, at int, open *[]string) (int, error) {
	end := strings.IndexByte(text[at:], '>')
	if end < 0 {
		return 0, fmt.Errorf("unclosed end tag at byte offset %d", at)
	}
	name := strings.ToLower(strings.TrimSpace(text[at+2 : at+end]))
	if len(*open) == 0 {
		return 0, fmt.Errorf("unexpected end tag at byte offset %d", at)
	}
	want := (*open)[len(*open)-1]
	if name != want {
		return 0, fmt.Errorf("unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", at, want, name)
	}
	*open = (*open)[:len(*open)-1]
	return end + 1, nil
}

func isTagNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// utf16Len is the length Telegram measures text and entity offsets in.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
