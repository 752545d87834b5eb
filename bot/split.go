package bot

import (
	"html"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxTextLength is Telegram's limit for one message, in UTF-16 code units.
const MaxTextLength = 4096

// tagReserve is room kept in each part for closing and reopening the HTML
// tags that are open where a text is split.
const tagReserve = 256

// splitText cuts an HTML text into parts of at most limit UTF-16 code units
// (counted on the HTML source, which is never shorter than what Telegram
// counts). It cuts between lines; a line longer than lineBudget is cut at a
// space, or else anywhere outside a tag or entity. Tags open at a cut are
// closed at the end of the part and reopened at the start of the next, so
// every part is valid HTML by itself; limit-lineBudget is the room for them.
func splitText(text string, limit, lineBudget int) []string {
	if utf16Len(text) <= limit {
		return []string{text}
	}
	var (
		parts []string
		cur   strings.Builder
		open  []string // opening tags in effect at the end of cur
		empty = true   // cur holds no line yet
	)
	finish := func() {
		cur.WriteString(closingTags(open))
		if strings.TrimSpace(stripTags(cur.String())) != "" {
			parts = append(parts, cur.String())
		}
		cur.Reset()
		cur.WriteString(strings.Join(open, ""))
		empty = true
	}
	for _, line := range strings.Split(text, "\n") {
		for _, chunk := range cutLine(line, lineBudget) {
			sep := "\n"
			if empty {
				sep = ""
			}
			after := trackTags(open, chunk)
			if !empty && utf16Len(cur.String())+len(sep)+utf16Len(chunk)+utf16Len(closingTags(after)) > limit {
				finish()
				sep = ""
			}
			cur.WriteString(sep)
			cur.WriteString(chunk)
			open, empty = after, false
		}
	}
	finish()
	return parts
}

// cutLine cuts a line into chunks of at most budget UTF-16 code units.
func cutLine(line string, budget int) []string {
	var chunks []string
	for utf16Len(line) > budget {
		at := cutPoint(line, budget)
		chunks = append(chunks, line[:at])
		line = strings.TrimLeft(line[at:], " ")
	}
	return append(chunks, line)
}

// cutPoint is a byte index at most budget UTF-16 code units into s: after
// the last space in the second half of that span if there is one, and never
// inside a tag or an entity unless one fills the whole span.
func cutPoint(s string, budget int) int {
	limit, units := 0, 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > budget {
			break
		}
		limit = i + utf8.RuneLen(r)
	}
	at := limit
	if space := strings.LastIndexByte(s[:limit], ' '); space > limit/2 {
		at = space + 1
	}
	// Not inside a tag, and not right after an opening one.
	for lt := strings.LastIndexByte(s[:at], '<'); lt > 0; lt = strings.LastIndexByte(s[:at], '<') {
		inside := !strings.Contains(s[lt:at], ">")
		opening := strings.HasSuffix(s[:at], ">") && !strings.HasPrefix(s[lt:], "</")
		if !inside && !opening {
			break
		}
		at = lt
	}
	if amp := strings.LastIndexByte(s[:at], '&'); amp > 0 && !strings.Contains(s[amp:at], ";") {
		at = amp
	}
	if at == 0 {
		at = max(limit, 1)
	}
	return at
}

// trackTags returns the opening tags in effect after chunk, given those in
// effect before it.
func trackTags(open []string, chunk string) []string {
	stack := append([]string(nil), open...)
	for i := 0; ; {
		lt := strings.IndexByte(chunk[i:], '<')
		if lt < 0 {
			return stack
		}
		lt += i
		gt := strings.IndexByte(chunk[lt:], '>')
		if gt < 0 {
			return stack
		}
		gt += lt
		tag := chunk[lt : gt+1]
		if name, closing := tagName(tag); closing {
			for j := len(stack) - 1; j >= 0; j-- {
				if n, _ := tagName(stack[j]); n == name {
					stack = append(stack[:j], stack[j+1:]...)
					break
				}
			}
		} else if name != "" {
			stack = append(stack, tag)
		}
		i = gt + 1
	}
}

// tagName returns the lower-case name of a tag like <a href="x"> or </b>.
func tagName(tag string) (name string, closing bool) {
	inner := strings.TrimSuffix(strings.TrimPrefix(tag, "<"), ">")
	if closing = strings.HasPrefix(inner, "/"); closing {
		inner = inner[1:]
	}
	if end := strings.IndexAny(inner, " \t\n/"); end >= 0 {
		inner = inner[:end]
	}
	return strings.ToLower(inner), closing
}

// closingTags closes the open tags, innermost first.
func closingTags(open []string) string {
	var b strings.Builder
	for i := len(open) - 1; i >= 0; i-- {
		name, _ := tagName(open[i])
		b.WriteString("</" + name + ">")
	}
	return b.String()
}

// stripTags removes HTML tags, keeping the text between them.
func stripTags(s string) string {
	var b strings.Builder
	inTag := false
	for _, r := range s {
		switch {
		case r == '<':
			inTag = true
		case r == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// utf16Len counts s in UTF-16 code units, as Telegram does.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// PlainText renders Telegram HTML as plain text: tags dropped, entities
// decoded. The console transport prints replies this way.
func PlainText(htmlText string) string {
	return html.UnescapeString(stripTags(htmlText))
}
