package commands

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/bot"
)

// hostile is one bad input and what the bot must say to it: a reply
// containing want, or nothing when want is "".
type hostile struct {
	name, text, want string
	group            bool
}

const (
	wantUsage   = "Usage:"
	wantHelp    = "/help"
	wantNothing = "Nothing changed"
	wantIgnored = ""
)

// badNames are app names the grammar lets through as one token but
// validation must refuse.
var badNames = []string{
	"Web", "WEB", "web_app", "-web", "web-", "web.app", "ñame", "wеb" /* Cyrillic е */, "ｗｅｂ", "web\u200f", "\u202eweb",
	"we\u200bb", strings.Repeat("a", 64), strings.Repeat("x", 300), "web/", "/web", "ns/", "ns//web", "Ns/web", "ns/Web",
	"a/b/c", "web*", "web;rm", "$(reboot)", "`id`", "web'", `web"`, "..", ".", "<b>web</b>", "<script>alert(1)</script>",
	"*web*", "_web_", "[web](http://evil.example)", "&amp;", "web\x00", "\xff\xfe", "%2e%2e", "web&lt;", "😀",
}

func hostileTexts() []hostile {
	var hs []hostile
	add := func(want string, texts ...string) {
		for _, t := range texts {
			hs = append(hs, hostile{name: fmt.Sprintf("%.60q", t), text: t, want: want})
		}
	}
	for _, n := range badNames {
		add(wantUsage, "/create "+n+" nginx:1.27 1", "/scale "+n+" 3", "/delete "+n, "/status "+n, "/ns "+n,
			"/deploy "+n+" nginx:1.28", "/image "+n+" nginx:1.28", "/restart "+n, "/rollback "+n, "/rollback "+n+" 1", "/history "+n,
			"/events "+n, "/logs "+n)
	}
	// Unknown commands and lookalikes of known ones.
	add(wantHelp, "/upgrade web", "/rm web", "/kubectl get pods", "/exec web sh", "/sudo scale web 3", "/admin",
		"/scale_web 3", "/list2", "/helpme", "/startx", "/whoami2", "/cancelall", "/del web", "/stat web",
		"/ѕcale web 3", "/sсale web 3", "/ｓcale web 3", "/scale\u200b web 3", "/scale\x00web 3", "/", "//", "/ ",
		"/@teleopbot", "/scale@ web 3", "/scale@teleopbot@teleopbot web 3", "/scale@teleop-bot web 3", "/foo<b>", "/"+strings.Repeat("a", 40),
		"/scale!", "/list;", "/list&", "/status?web", "/\u202escale web 3")
	// Missing and extra arguments.
	add(wantUsage, "/create web", "/create web   ", "/status", "/status   ", "/scale web", "/scale web   ",
		"/list all", "/list web", "/whoami now", "/cancel all", "/help scale", "/help me please", "/scale web 3 4",
		"/deploy web", "/image web", "/deploy web nginx:1.28 now", "/restart web now",
		"/rollback web 1 2", "/history web 2", "/history web db",
		"/create a b c d", "/delete web now", "/status web db", "/ns a b", "/start a b", "/start <b>x</b>",
		"/scale aaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "/scale "+strings.Repeat("a ", 1500), "/create "+strings.Repeat("a\t", 1500),
		"/scale "+strings.Repeat(" ", 30)+"!", "/create web nginx latest now", "/scale <web> 3 4", "/create web 'nginx latest' 1")
	// /events and /logs: pods and line counts.
	add(wantUsage, "/events web db", "/logs web 0", "/logs web 201", "/logs web 00", "/logs web -5",
		"/logs web web-1 1e3", "/logs web Web-Pod", "/logs web web_1", "/logs web <b>x</b>", "/logs web a b c", "/logs web 99999999999999999999",
		"/logs web web-1 +5", "/logs web web-1 ٣", "/logs web "+strings.Repeat("p", 254), "/logs web web-1 -1", "/logs web ../../etc/passwd")
	// Images.
	for _, image := range []string{"'nginx'", `"nginx"`, "nginx:", ":latest", "nginx//x", `ngi"nx`, "nginx$(id)", ";rm",
		"-nginx", strings.Repeat("n", 600), "nginx\u200f", "<img>", "ｎginx", "nginx:1.27;", "nginx|sh", "\xff", "nginx\x07"} {
		add(wantUsage, "/create web "+image+" 1", "/deploy web "+image, "/image web "+image)
	}
	// Revisions.
	for _, rev := range []string{"0", "-1", "+1", "1.5", "one", "٣", "３", "99999999999999999999", "1e3", "#1", "0x1", "1‏"} {
		add(wantUsage, "/rollback web "+rev)
	}
	// Well formed, but web has no history to go back to.
	add(wantNothing, "/rollback web", "/rollback web 7")
	// Replica counts.
	for _, n := range []string{"-1", "101", "1e9", "3.5", "three", "+3", "0x10", "٣", "３", "99999999999999999999", "2147483648", "1_000", "5\u200f", "-"} {
		add(wantUsage, "/create web nginx:1.27 "+n)
	}
	for _, n := range []string{"101", "+999999999999", "-999", "1e9", "++2", "+-2", "2.5", "+", "-", "five", "٣", "３",
		"2147483648", "+101", "-101", "1,000", "0b11", " ", "5%"} {
		if strings.TrimSpace(n) == "" {
			continue
		}
		add(wantUsage, "/scale web "+n)
	}
	// In range as a change, out of range as a result: web has 3 replicas.
	add(wantNothing, "/scale web -4", "/scale web +98", "/scale web -100", "/scale web +100")
	// Long messages and chatter.
	long := strings.Repeat("1", 5000)
	add("too long", "/scale web "+long, "/create "+strings.Repeat("a", 5000)+" nginx", strings.Repeat("hello ", 900), strings.Repeat("/", 5000))
	add("I understand commands", "hello", "<b>hi</b>", "\u200f/scale web 3", " /scale web 3", "scale web 3", "*bold* _it_ `code`")
	add(wantIgnored, "/list@otherbot", "/scale@otherbot web 3", "/delete@OtherBot web", "/create@other_bot web nginx 3")
	// Groups: chatter and long messages are none of our business there.
	for _, t := range []string{"hello all", strings.Repeat("x", 5000), "<b>hi</b>", "scale web 3", "/list@otherbot"} {
		hs = append(hs, hostile{name: fmt.Sprintf("group %.40q", t), text: t, want: wantIgnored, group: true})
	}
	return hs
}

func TestHostileInputs(t *testing.T) {
	corpus := hostileTexts()
	require.GreaterOrEqual(t, len(corpus), 200)
	for _, h := range corpus {
		t.Run(h.name, func(t *testing.T) {
			w := newWorld(t, teleApp("default", "web"))
			opts := []updateOption{}
			if h.group {
				opts = append(opts, inGroup)
			}
			w.router.HandleUpdate(context.Background(), message(h.text, opts...))

			assert.Empty(t, w.teleAppWrites(), "the cluster changed")
			assert.Equal(t, int32(3), w.replicas(t, "default", "web"))
			assert.Zero(t, w.namespaces.sets, "a namespace was set")
			assert.Empty(t, w.conversations.started, "a conversation was started")
			replies := w.messenger.texts()
			if h.want == wantIgnored {
				assert.Empty(t, replies)
				return
			}
			require.Len(t, replies, 1)
			assert.Contains(t, replies[0], h.want)
			assert.True(t, utf8.ValidString(replies[0]), "reply is not UTF-8: %q", replies[0])
			assert.LessOrEqual(t, utf8.RuneCountInString(replies[0]), MaxMessageLength)
			requireSafeHTML(t, replies[0])
		})
	}
}

func TestHostileButtonPresses(t *testing.T) {
	for _, data := range []string{"", "x", "delete:web:yes", strings.Repeat("y", 65), "\x00", "<b>", "c:1:2:3", "\xff",
		"rb:", "rb:1", "rb:-1", "rb:abc", "rb:99999999999999999999"} {
		t.Run(fmt.Sprintf("%q", data), func(t *testing.T) {
			w := newWorld(t, teleApp("default", "web"))
			w.router.HandleUpdate(context.Background(), press(data))
			assert.Empty(t, w.teleAppWrites())
			assert.Empty(t, w.messenger.texts())
			assert.Equal(t, []string{"This menu has expired."}, w.messenger.answers)
		})
	}
}

// TestHostileInputsDuringConversation: bad commands typed mid-conversation
// end it (the user moved on) but still change nothing.
func TestHostileInputsDuringConversation(t *testing.T) {
	w := newWorld(t, teleApp("default", "web"))
	ctx := context.Background()
	require.NoError(t, w.conversations.Start(ctx, "create", message("/create"), nil))
	w.router.HandleUpdate(ctx, message("/scale web 1e9"))
	assert.Empty(t, w.teleAppWrites())
	texts := w.messenger.texts()
	require.Len(t, texts, 2)
	assert.Equal(t, "(I dropped your unfinished <code>/create</code>.)", texts[0])
	assert.Contains(t, texts[1], wantUsage)
	_, open, _ := w.conversations.Open(ctx, chatID, editor)
	assert.False(t, open)
	var _ bot.Handler = w.router
}
