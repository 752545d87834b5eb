// Package console is a terminal transport for the bot engine: lines typed
// on an io.Reader become updates from one configured chat and user, and
// replies are printed as plain text on an io.Writer, with inline buttons as
// choices #1, #2, ... picked by typing "#" and the number. A plain number is
// always typed text: "4" answers "how many replicas?" with 4, never with the
// fourth button.
package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/teleop/teleop/bot"
)

// Config says who is typing.
type Config struct {
	In  io.Reader
	Out io.Writer
	// ChatID and UserID identify the console's chat and user in updates.
	ChatID, UserID int64
	Username       string
}

// Console is the terminal transport. Its Messenger prints every message:
// the console chat's plainly, other chats' (notifications addressed to
// them) with the chat ID in front.
type Console struct {
	cfg Config

	mu         sync.Mutex
	lastUpdate int64
	lastMsg    int
	lastQuery  int
	// choices are the buttons of the console chat's latest message with
	// buttons, numbered from 1; choicesMsg is that message's ID.
	choices    []bot.Button
	choicesMsg int
}

// New returns a console transport.
func New(cfg Config) *Console {
	return &Console{cfg: cfg}
}

// Messenger prints replies to the console's writer.
func (c *Console) Messenger() bot.Messenger { return (*messenger)(c) }

// Run reads lines until the reader ends (returning nil) or ctx ends, and
// hands each line to h as an update, one at a time. "#N" naming a choice of
// the latest buttons presses that button.
func (c *Console) Run(ctx context.Context, h bot.Handler) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(c.cfg.In)
		for scanner.Scan() {
			select {
			case lines <- scanner.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- scanner.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					return fmt.Errorf("console: read input: %w", err)
				}
				return nil
			}
			if u, ok := c.update(strings.TrimSpace(line)); ok {
				h.HandleUpdate(ctx, u)
			}
		}
	}
}

// update turns a typed line into an update; empty lines are none.
func (c *Console) update(line string) (bot.Update, bool) {
	if line == "" {
		return bot.Update{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastUpdate++
	u := bot.Update{
		ID: c.lastUpdate, ChatID: c.cfg.ChatID, ChatType: "private",
		UserID: c.cfg.UserID, Username: c.cfg.Username,
	}
	if n, ok := choice(line); ok && n >= 1 && n <= len(c.choices) {
		c.lastQuery++
		u.MessageID = c.choicesMsg
		u.Callback = &bot.Callback{ID: "console-" + strconv.Itoa(c.lastQuery), Data: c.choices[n-1].Data}
		return u, true
	}
	c.lastMsg++
	u.MessageID = c.lastMsg
	u.Text = line
	return u, true
}

// ChoicePrefix marks a typed line as the choice of a button.
const ChoicePrefix = "#"

// choice reads "#N", with or without a space after the "#".
func choice(line string) (int, bool) {
	rest, ok := strings.CutPrefix(line, ChoicePrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	return n, err == nil
}

// messenger is the Console seen as a bot.Messenger.
type messenger Console

// Send prints r; an edit is printed again in full, marked as edited.
func (m *messenger) Send(_ context.Context, r bot.Reply) (int, error) {
	c := (*Console)(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	id := r.EditMessageID
	if id == 0 {
		c.lastMsg++
		id = c.lastMsg
	}
	prefix := ""
	if r.ChatID != c.cfg.ChatID {
		prefix = fmt.Sprintf("[chat %d] ", r.ChatID)
	}
	if r.EditMessageID != 0 {
		prefix += "(edited) "
	}
	var out strings.Builder
	if r.Text != "" {
		out.WriteString(prefix + bot.PlainText(r.Text) + "\n")
	}
	if r.ChatID == c.cfg.ChatID {
		c.remember(id, r)
	}
	for i, b := range flatten(r.Buttons) {
		fmt.Fprintf(&out, "  [%s%d] %s\n", ChoicePrefix, i+1, b.Text)
	}
	if _, err := io.WriteString(c.cfg.Out, out.String()); err != nil {
		return 0, fmt.Errorf("console: write: %w", err)
	}
	return id, nil
}

// remember makes the buttons of message id the current choices; an edit
// that removes them removes the choices.
func (c *Console) remember(id int, r bot.Reply) {
	switch {
	case len(r.Buttons) > 0:
		c.choices, c.choicesMsg = flatten(r.Buttons), id
	case id == c.choicesMsg:
		c.choices, c.choicesMsg = nil, 0
	}
}

func flatten(rows [][]bot.Button) []bot.Button {
	var all []bot.Button
	for _, row := range rows {
		all = append(all, row...)
	}
	return all
}

// AnswerCallback prints the toast text, if any.
func (m *messenger) AnswerCallback(_ context.Context, _ string, text string) error {
	if text == "" {
		return nil
	}
	c := (*Console)(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintf(c.cfg.Out, "  (%s)\n", text); err != nil {
		return fmt.Errorf("console: write: %w", err)
	}
	return nil
}
