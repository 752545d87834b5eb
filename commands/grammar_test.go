package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestGrammar(t *testing.T) {
	g := newGrammar(allCommands...)
	tests := []struct {
		text    string
		outcome outcome
		word    string
		args    map[string]string
	}{
		{text: "/list", outcome: matched, word: "list", args: map[string]string{}},
		{text: "/LIST", outcome: matched, word: "list", args: map[string]string{}},
		{text: "/List@TeleopBot", outcome: matched, word: "list", args: map[string]string{}},
		{text: "/list@teleopbot  ", outcome: matched, word: "list", args: map[string]string{}},
		{text: "/list@otherbot", outcome: otherBot},
		{text: "/scale@otherbot web 3", outcome: otherBot},
		{text: "/start", outcome: matched, word: "start", args: map[string]string{}},
		{text: "/start deeplink_42", outcome: matched, word: "start", args: map[string]string{}},
		{text: "/help", outcome: matched, word: "help", args: map[string]string{}},
		{text: "/help me", outcome: badUsage, word: "help"},
		{text: "/create", outcome: matched, word: "create", args: map[string]string{}},
		{text: "/create web nginx:1.27", outcome: matched, word: "create", args: map[string]string{"name": "web", "image": "nginx:1.27"}},
		{text: "/create web nginx:1.27 3", outcome: matched, word: "create", args: map[string]string{"name": "web", "image": "nginx:1.27", "replicas": "3"}},
		{text: "/Create@teleopbot shop/web ghcr.io/org/app:v1 0", outcome: matched, word: "create",
			args: map[string]string{"name": "shop/web", "image": "ghcr.io/org/app:v1", "replicas": "0"}},
		{text: "/create web", outcome: badUsage, word: "create"},
		{text: "/create web nginx 3 4", outcome: badUsage, word: "create"},
		{text: "/scale", outcome: matched, word: "scale", args: map[string]string{}},
		{text: "/scale web +2", outcome: matched, word: "scale", args: map[string]string{"name": "web", "replicas": "+2"}},
		{text: "/SCALE   web\t-1  ", outcome: matched, word: "scale", args: map[string]string{"name": "web", "replicas": "-1"}},
		{text: "/scale web\n5", outcome: matched, word: "scale", args: map[string]string{"name": "web", "replicas": "5"}},
		{text: "/scale web", outcome: badUsage, word: "scale"},
		{text: "/scale web 3 now", outcome: badUsage, word: "scale"},
		{text: "/delete", outcome: matched, word: "delete", args: map[string]string{}},
		{text: "/delete web", outcome: matched, word: "delete", args: map[string]string{"name": "web"}},
		{text: "/delete web db", outcome: badUsage, word: "delete"},
		{text: "/status web", outcome: matched, word: "status", args: map[string]string{"name": "web"}},
		{text: "/status", outcome: badUsage, word: "status"},
		{text: "/events web", outcome: matched, word: "events", args: map[string]string{"name": "web"}},
		{text: "/events", outcome: matched, word: "events", args: map[string]string{}},
		{text: "/events web db", outcome: badUsage, word: "events"},
		{text: "/logs web", outcome: matched, word: "logs", args: map[string]string{"name": "web"}},
		{text: "/logs web 100", outcome: matched, word: "logs", args: map[string]string{"name": "web", "lines": "100"}},
		{text: "/logs shop/web web-7d4b9-x2x7z", outcome: matched, word: "logs", args: map[string]string{"name": "shop/web", "pod": "web-7d4b9-x2x7z"}},
		{text: "/Logs@teleopbot web web-7d4b9-x2x7z 20 ", outcome: matched, word: "logs",
			args: map[string]string{"name": "web", "pod": "web-7d4b9-x2x7z", "lines": "20"}},
		{text: "/logs web 10 20", outcome: matched, word: "logs", args: map[string]string{"name": "web", "pod": "10", "lines": "20"}},
		{text: "/logs", outcome: matched, word: "logs", args: map[string]string{}},
		{text: "/logs   ", outcome: matched, word: "logs", args: map[string]string{}},
		{text: "/logs web pod 20 30", outcome: badUsage, word: "logs"},
		{text: "/ns", outcome: matched, word: "ns", args: map[string]string{}},
		{text: "/ns web", outcome: matched, word: "ns", args: map[string]string{"namespace": "web"}},
		{text: "/whoami", outcome: matched, word: "whoami", args: map[string]string{}},
		{text: "/cancel", outcome: matched, word: "cancel", args: map[string]string{}},
		{text: "/cancel@teleopbot", outcome: matched, word: "cancel", args: map[string]string{}},
		{text: "/upgrade web", outcome: unknownCommand, word: "/upgrade"},
		{text: "/scaleweb 3", outcome: unknownCommand, word: "/scaleweb"},
		{text: "/ѕcale web 3", outcome: unknownCommand, word: "/ѕcale"}, // Cyrillic ѕ
		{text: "/", outcome: unknownCommand, word: "/"},
		{text: "/scale!", outcome: unknownCommand, word: "/scale!"},
		{text: "hello", outcome: notCommand},
		{text: " /list", outcome: notCommand},
		{text: "", outcome: notCommand},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := g.parse(tt.text, botName)
			assert.Equal(t, tt.outcome, got.outcome)
			assert.Equal(t, tt.word, got.word)
			assert.Equal(t, tt.args, got.args)
		})
	}
}

func TestGrammarWithoutBotNameAcceptsAnySuffix(t *testing.T) {
	got := newGrammar(allCommands...).parse("/list@whoever", "")
	assert.Equal(t, matched, got.outcome)
}

// TestUnknownCommandWordIsBounded: the hint quotes what the user typed, but
// never a whole long message.
func TestUnknownCommandWordIsBounded(t *testing.T) {
	got := newGrammar(allCommands...).parse("/"+strings.Repeat("é", 100)+" x", botName)
	assert.Equal(t, unknownCommand, got.outcome)
	assert.Equal(t, 33, len([]rune(got.word)))
}

// matchingCommands lists every command whose pattern accepts text.
func matchingCommands(t testing.TB, text string) []string {
	var words []string
	for _, c := range allCommands {
		ok, err := c.pattern.MatchString(text)
		if err != nil {
			t.Logf("%s timed out on %q: %v", c.word, text, err)
		}
		if ok {
			words = append(words, c.word)
		}
	}
	return words
}

// FuzzParse proves that no input panics the grammar, that no input matches
// two commands, and that a parse names the one command whose pattern matched.
func FuzzParse(f *testing.F) {
	for _, c := range allCommands {
		f.Add(c.example)
		f.Add(c.usage)
		f.Add(strings.ToUpper(c.example) + "@" + botName)
	}
	for _, h := range hostileTexts() {
		if len(h.text) < 300 {
			f.Add(h.text)
		}
	}
	g := newGrammar(allCommands...)
	f.Fuzz(func(t *testing.T, text string) {
		got := g.parse(text, botName)
		matches := matchingCommands(t, text)
		if len(matches) > 1 {
			t.Fatalf("%q matches %v", text, matches)
		}
		if got.outcome == matched {
			if len(matches) != 1 || matches[0] != got.word {
				t.Fatalf("%q parsed as %s but the patterns matching it are %v", text, got.word, matches)
			}
		}
	})
}

// BenchmarkParse measures grammar matching per message, and reports it as a
// multiple of splitting the same message into fields (x-fields), timed in
// the same run, so the figure means the same on any machine.
func BenchmarkParse(b *testing.B) {
	g := newGrammar(allCommands...)
	for _, bm := range []struct{ name, text string }{
		{"scale", "/scale web +2"},
		{"create", "/create@teleopbot shop/web ghcr.io/org/app:v1 3"},
		{"unknown", "/upgrade web"},
		{"chatter", "good morning everyone"},
		{"bomb", "/scale " + strings.Repeat("a", 4000) + "!"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				g.parse(bm.text, botName)
			}
			// b.Loop has stopped the timer: the baseline is not counted in ns/op.
			start := time.Now()
			for range b.N {
				fieldsSink = strings.Fields(bm.text)
			}
			b.ReportMetric(float64(b.Elapsed())/float64(time.Since(start)), "x-fields")
		})
	}
}

// fieldsSink keeps the baseline's work from being optimised away.
var fieldsSink []string
