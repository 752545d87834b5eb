package commands

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/dlclark/regexp2"
)

// MaxMessageLength is the longest message Telegram delivers (in characters);
// anything longer is not a command.
const MaxMessageLength = 4096

// matchTimeout bounds every pattern match, so no input can stall the bot.
const matchTimeout = 50 * time.Millisecond

// command is one thing the bot understands: its pattern beside its handler.
type command struct {
	// word is the command as typed after the slash, in lower case.
	word string
	// usage and example are shown by /help and after a bad input.
	usage, example string
	// summary says in a few words what the command does; takes says which
	// arguments it accepts, for the reply to a bad input.
	summary, takes string
	// pattern matches the whole message, anchored, with named groups for the arguments.
	pattern *regexp2.Regexp
	// run handles a match and returns the reply text (Telegram HTML), or ""
	// when it replied otherwise (a conversation took over).
	run func(ctx context.Context, r *Router, req *request) string
}

// commandPattern compiles the pattern of /word: the command word in any case,
// an optional @botname suffix (group "bot"), then args (a pattern of its own
// named groups, starting with the whitespace it needs), then the end of the
// message.
func commandPattern(word, args string) *regexp2.Regexp {
	re := regexp2.MustCompile(`^/(?i:`+word+`)(?:@(?<bot>[A-Za-z0-9_]{1,64}))?`+args+`\s*$`, regexp2.None)
	re.MatchTimeout = matchTimeout
	return re
}

// headPattern finds the command word of any message that looks like a
// command, known or not, so an unknown one gets a hint and a known one with
// bad arguments gets its usage.
var headPattern = func() *regexp2.Regexp {
	re := regexp2.MustCompile(`^/(?<word>[A-Za-z0-9_]{1,32})(?:@(?<bot>[A-Za-z0-9_]{1,64}))?(?=\s|$)`, regexp2.None)
	re.MatchTimeout = matchTimeout
	return re
}()

// outcome is what the grammar made of a message.
type outcome int

const (
	// notCommand: plain text, for a conversation or nobody.
	notCommand outcome = iota
	// otherBot: a command addressed to another bot with @name.
	otherBot
	// unknownCommand: starts with a slash but names nothing we know.
	unknownCommand
	// badUsage: a known command whose arguments do not fit its pattern.
	badUsage
	// matched: a known command with its arguments.
	matched
)

// parse is the grammar's verdict on one message.
type parse struct {
	outcome outcome
	// word is the command word as typed (for unknownCommand) or canonical.
	word string
	// cmd is set for badUsage and matched.
	cmd *command
	// args are the named groups of a match.
	args map[string]string
}

// grammar is the set of commands the bot understands.
type grammar struct {
	byWord map[string]*command
	// ordered lists them as /help shows them.
	ordered []*command
}

func newGrammar(cmds ...*command) *grammar {
	g := &grammar{byWord: make(map[string]*command, len(cmds)), ordered: cmds}
	for _, c := range cmds {
		g.byWord[c.word] = c
	}
	return g
}

// parse matches text against the grammar. botName is our bot's username:
// a command suffixed with another name is not for us; with botName empty any
// suffix is accepted. A pattern that times out counts as no match.
func (g *grammar) parse(text, botName string) parse {
	if !strings.HasPrefix(text, "/") || len(text) > 4*MaxMessageLength {
		return parse{outcome: notCommand}
	}
	head, err := headPattern.FindStringMatch(text)
	if err != nil || head == nil {
		return parse{outcome: unknownCommand, word: firstField(text)}
	}
	if bot := head.GroupByName("bot").String(); bot != "" && botName != "" && !strings.EqualFold(bot, botName) {
		return parse{outcome: otherBot}
	}
	word := head.GroupByName("word").String()
	cmd, ok := g.byWord[strings.ToLower(word)]
	if !ok {
		return parse{outcome: unknownCommand, word: "/" + word}
	}
	m, err := cmd.pattern.FindStringMatch(text)
	if err != nil || m == nil {
		return parse{outcome: badUsage, word: cmd.word, cmd: cmd}
	}
	args := make(map[string]string)
	for _, grp := range m.Groups()[1:] {
		if grp.Name != "bot" && grp.Length > 0 {
			args[grp.Name] = grp.String()
		}
	}
	return parse{outcome: matched, word: cmd.word, cmd: cmd, args: args}
}

// firstField is the first word of text, bounded so a reply quoting it stays short.
func firstField(text string) string {
	field := text
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		field = text[:i]
	}
	if r := []rune(field); len(r) > 32 {
		return string(r[:32]) + "…"
	}
	return field
}
