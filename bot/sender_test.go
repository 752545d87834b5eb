package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// fastLimits are Telegram's limits ten times faster, for the emulator and
// the sender alike, so that tests of pacing take tenths of seconds.
var (
	fastEmuLimits = telegramemu.Limits{
		PerChat:  telegramemu.Rate{Every: 100 * time.Millisecond, Burst: 3},
		PerGroup: telegramemu.Rate{Every: 300 * time.Millisecond, Burst: 20},
		Global:   telegramemu.Rate{Every: time.Second / 300, Burst: 30},
	}
	fastLimits = Limits{
		PerChat:  Rate{Every: 100 * time.Millisecond, Burst: 2},
		PerGroup: Rate{Every: 300 * time.Millisecond, Burst: 19},
		Global:   Rate{Every: time.Second / 300, Burst: 29},
	}
)

// newSenderUnderTest returns an emulator with fast limits and a sender on it.
func newSenderUnderTest(t *testing.T) (*telegramemu.Server, Messenger) {
	emu := telegramemu.New(t, telegramemu.Options{Limits: fastEmuLimits})
	tg := newTelegram(t, emu, func(c *Config) { c.Limits = fastLimits })
	return emu, tg.Messenger()
}

func withButtons(chatID int64, text string) Reply {
	return Reply{ChatID: chatID, Text: text, Buttons: [][]Button{{{Text: "Yes", Data: "yes"}, {Text: "No", Data: "no"}}}}
}

// sendAll sends replies concurrently, in order per chat, and returns the
// message IDs and errors by reply index.
func sendAll(t *testing.T, m Messenger, replies []Reply) ([]int, []error) {
	ids, errs := make([]int, len(replies)), make([]error, len(replies))
	var wg sync.WaitGroup
	for i, r := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = m.Send(context.Background(), r)
		}()
		time.Sleep(time.Millisecond) // queue in index order
	}
	wg.Wait()
	return ids, errs
}

func TestSenderBurstStaysWithinTelegramLimits(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{}) // Telegram's real limits
	m := newTelegram(t, emu, nil).Messenger()
	var replies []Reply
	for i := range 10 {
		for chat := int64(1); chat <= 5; chat++ {
			replies = append(replies, withButtons(chat, fmt.Sprintf("message %d", i)))
		}
	}
	_, errs := sendAll(t, m, replies)

	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Zero(t, emu.Stats().TooManyRequests)
	for chat := int64(1); chat <= 5; chat++ {
		msgs := emu.Messages(chat)
		require.Len(t, msgs, 10, "chat %d", chat)
		for i, msg := range msgs {
			assert.Equal(t, fmt.Sprintf("message %d", i), msg.Text, "chat %d out of order", chat)
		}
	}
}

func TestSenderPacesGroupsAndPrivateChats(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	var replies []Reply
	for i := range 25 {
		replies = append(replies, withButtons(-100, fmt.Sprintf("group %d", i)), withButtons(7, fmt.Sprintf("private %d", i)))
	}
	_, errs := sendAll(t, m, replies)

	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Zero(t, emu.Stats().TooManyRequests)
	assert.Len(t, emu.Messages(-100), 25)
	assert.Len(t, emu.Messages(7), 25)
}

func TestSenderRecoversFromFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fault        telegramemu.Fault
		minDelay     time.Duration
		wantRequests int
	}{
		{"429 honoured", telegramemu.Fault{Method: "sendMessage", Count: 1, Status: 429, RetryAfter: 1}, time.Second, 2},
		{"server errors retried", telegramemu.Fault{Method: "sendMessage", Count: 2, Status: 502}, time.Second, 3},
		{"dropped connection retried", telegramemu.Fault{Method: "sendMessage", Count: 1, Drop: true}, 500 * time.Millisecond, 2},
		{"slow answer waited for", telegramemu.Fault{Method: "sendMessage", Count: 1, Delay: 300 * time.Millisecond}, 300 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, m := newSenderUnderTest(t)
			emu.Fail(tt.fault)
			start := time.Now()
			id, err := m.Send(context.Background(), Reply{ChatID: 7, Text: "web is <b>ready</b>"})

			require.NoError(t, err)
			assert.GreaterOrEqual(t, time.Since(start), tt.minDelay)
			msgs := emu.Messages(7)
			require.Len(t, msgs, 1, "delivered exactly once")
			assert.Equal(t, msgs[0].ID, id)
			assert.Equal(t, tt.wantRequests, emu.Stats().Requests["sendMessage"])
		})
	}
}

func TestSenderGlobalFloodPausesEveryChat(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	emu.Fail(telegramemu.Fault{Method: "sendMessage", Count: 2, Status: 429, RetryAfter: 1})
	start := time.Now()
	_, errs := sendAll(t, m, []Reply{{ChatID: 1, Text: "a"}, {ChatID: 2, Text: "b"}, {ChatID: 3, Text: "c"}})

	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "chat 3 did not wait out the flood")
	assert.Equal(t, 5, emu.Stats().Requests["sendMessage"], "two refused, three delivered, nothing else")
}

func TestSenderDropsUnreachableChats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mark func(*telegramemu.Server, int64)
	}{
		{"blocked the bot", (*telegramemu.Server).MarkBlocked},
		{"chat not found", (*telegramemu.Server).MarkUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, m := newSenderUnderTest(t)
			tt.mark(emu, 7)
			// The first call is slow, so that the second send queues behind it.
			emu.Fail(telegramemu.Fault{Method: "sendMessage", Count: 1, Delay: 200 * time.Millisecond})
			_, errs := sendAll(t, m, []Reply{{ChatID: 7, Text: "one"}, withButtons(7, "two"), {ChatID: 8, Text: "elsewhere"}})

			assert.ErrorIs(t, errs[0], ErrChatUnreachable)
			assert.ErrorIs(t, errs[1], ErrChatUnreachable)
			assert.NoError(t, errs[2])
			assert.Equal(t, 2, emu.Stats().Requests["sendMessage"], "an unreachable chat was retried")

			_, err := m.Send(context.Background(), Reply{ChatID: 7, Text: "later"})
			assert.ErrorIs(t, err, ErrChatUnreachable, "a later send tries again, and fails again")
		})
	}
}

func TestSenderJoinsQueuedNoticesOnly(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	notice := func(text string) Reply { return Reply{ChatID: 7, Text: text, Priority: PriorityNotice} }
	// The replies go first; the notices queued behind them are joined, and a
	// reply is never joined with anything: its message may be edited later.
	replies := []Reply{
		notice("web is ready"),
		{ChatID: 7, Text: "reply one"},
		{ChatID: 7, Text: "reply two"},
		notice("db is ready"),
		notice("api is degraded"),
	}
	ids, errs := sendAll(t, m, replies)

	for _, err := range errs {
		require.NoError(t, err)
	}
	texts := messageTexts(emu, 7)
	require.Contains(t, texts, "reply one")
	require.Contains(t, texts, "reply two")
	var joined []string
	for _, text := range texts {
		if strings.Contains(text, "ready") || strings.Contains(text, "degraded") {
			joined = append(joined, strings.Split(text, "\n\n")...)
		}
	}
	assert.ElementsMatch(t, []string{"web is ready", "db is ready", "api is degraded"}, joined)
	assert.Less(t, len(texts), 5, "no notices were joined")
	assert.NotEqual(t, ids[1], ids[2], "two replies were joined")
	assert.Equal(t, ids[3], ids[4], "joined notices share the message")
}

func messageTexts(emu *telegramemu.Server, chatID int64) []string {
	var texts []string
	for _, msg := range emu.Messages(chatID) {
		texts = append(texts, msg.Text)
	}
	return texts
}

func TestSenderRepliesGoBeforeNoticesAndProgress(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	ctx := context.Background()
	tracked, err := m.Send(ctx, Reply{ChatID: 7, Text: "Scaling web 1 → 3…"})
	require.NoError(t, err)
	// Fill the queue of chat 7 with notices (buttons keep them apart) and
	// edits, far more than its bucket lets through at once.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := withButtons(7, fmt.Sprintf("notice %d", i))
			r.Priority = PriorityNotice
			_, _ = m.Send(ctx, r)
		}()
		go func() {
			defer wg.Done()
			_, _ = m.Send(ctx, Reply{ChatID: 7, EditMessageID: tracked, Text: fmt.Sprintf("Scaling web 1 → 3… %d", i), Priority: PriorityProgress})
		}()
	}
	waitUntil(t, "the low-priority traffic is being sent", func() bool { return len(emu.Messages(7)) > 1 })
	_, err = m.Send(ctx, Reply{ChatID: 7, Text: "the reply"})
	require.NoError(t, err)
	sentBefore := len(emu.Messages(7))
	wg.Wait()

	assert.Less(t, sentBefore, 1+10, "the reply waited for every queued notice")
	assert.Zero(t, emu.Stats().TooManyRequests)
}

func TestSenderDropsSupersededEdits(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	ctx := context.Background()
	id, err := m.Send(ctx, Reply{ChatID: 7, Text: "Scaling web 1 → 9…"})
	require.NoError(t, err)
	// Use the chat's bucket up, so the edits queue.
	for i := range 3 {
		_, err := m.Send(ctx, Reply{ChatID: 7, Text: fmt.Sprintf("filler %d", i)})
		require.NoError(t, err)
	}
	edits := make([]Reply, 8)
	for i := range edits {
		edits[i] = Reply{ChatID: 7, EditMessageID: id, Text: fmt.Sprintf("Scaling web 1 → 9… %d/9 ready", i+1), Priority: PriorityProgress}
	}
	ids, errs := sendAll(t, m, edits)

	for i := range edits {
		require.NoError(t, errs[i], "edit %d", i)
		assert.Equal(t, id, ids[i], "edit %d", i)
	}
	assert.Equal(t, "Scaling web 1 → 9… 8/9 ready", emu.Messages(7)[0].Text, "the newest edit is shown")
	assert.Less(t, emu.Stats().Requests["editMessageText"], len(edits), "no queued edit was superseded")
}

// Close while sends are being queued: every Send ends with its message or
// ErrClosed, and the race detector sees no Add racing with Close's Wait.
func TestSenderCloseWhileSending(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	for round := range 20 {
		tg := newTelegram(t, emu, nil)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := tg.Messenger().Send(context.Background(), Reply{ChatID: int64(100*round + i + 1), Text: "hello"})
				if err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("send: %v", err)
				}
			}()
		}
		tg.Close()
		wg.Wait()
	}
}

func TestSenderSplitsLongText(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	var lines []string
	for i := 0; utf16Len(strings.Join(lines, "\n")) < 5000; i++ {
		lines = append(lines, fmt.Sprintf("<b>app-%03d</b> Ready 3/3 &amp; serving", i))
	}
	// A <pre> block that spans the cut must be closed and reopened.
	text := "<pre>" + strings.Join(lines, "\n") + "</pre>"
	id, err := m.Send(context.Background(), withButtons(7, text))

	require.NoError(t, err)
	msgs := emu.Messages(7)
	require.Len(t, msgs, 2)
	assert.Equal(t, msgs[1].ID, id, "the ID of the last part, which carries the buttons")
	assert.Empty(t, msgs[0].Buttons)
	assert.NotEmpty(t, msgs[1].Buttons)
	rejoined := strings.TrimSuffix(msgs[0].Text, "</pre>") + "\n" + strings.TrimPrefix(msgs[1].Text, "<pre>")
	assert.Equal(t, text, rejoined)
}

func TestSenderEdits(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	ctx := context.Background()
	id, err := m.Send(ctx, withButtons(7, "Scaling web 3 → 5…"))
	require.NoError(t, err)

	for i, r := range []Reply{
		{ChatID: 7, EditMessageID: id, Text: "Scaling web 3 → 5… 4/5 ready"},
		{ChatID: 7, EditMessageID: id, Text: "Scaling web 3 → 5… 4/5 ready"}, // not modified: fine
		{ChatID: 7, EditMessageID: id, Text: "web is ready: 5/5"},
	} {
		got, err := m.Send(ctx, r)
		require.NoError(t, err, "edit %d", i)
		assert.Equal(t, id, got)
	}
	msgs := emu.Messages(7)
	require.Len(t, msgs, 1)
	assert.Equal(t, "web is ready: 5/5", msgs[0].Text)
	assert.Empty(t, msgs[0].Buttons, "an edit without buttons removes them")
	assert.Zero(t, emu.Stats().TooManyRequests)

	_, err = m.Send(ctx, Reply{ChatID: 7, EditMessageID: id, Buttons: [][]Button{{{Text: "Again", Data: "again"}}}})
	require.NoError(t, err)
	assert.Equal(t, [][]telegramemu.Button{{{Text: "Again", Data: "again"}}}, emu.Messages(7)[0].Buttons)
}

func TestSenderRefusesBadReplies(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	tests := []struct {
		name    string
		reply   Reply
		wantErr string
	}{
		{"no chat", Reply{Text: "hi"}, "no chat"},
		{"no text", Reply{ChatID: 7, Text: "  "}, "empty text"},
		{"button without data", Reply{ChatID: 7, Text: "hi", Buttons: [][]Button{{{Text: "x"}}}}, "1-64 bytes"},
		{"button data too long", Reply{ChatID: 7, Text: "hi", Buttons: [][]Button{{{Text: "x", Data: strings.Repeat("d", 65)}}}}, "1-64 bytes"},
		{"button without text", Reply{ChatID: 7, Text: "hi", Buttons: [][]Button{{{Data: "d"}}}}, "needs a text"},
		{"edit too long", Reply{ChatID: 7, EditMessageID: 1, Text: strings.Repeat("x", 5000)}, "does not fit"},
		{"HTML Telegram refuses", Reply{ChatID: 7, Text: "<b>unclosed"}, "sendMessage: 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Send(context.Background(), tt.reply)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	assert.Equal(t, 1, emu.Stats().Requests["sendMessage"], "only the valid-looking reply reached Telegram, once")
}

func TestSenderGivesUpWhenTheCallerDoes(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	emu.Fail(telegramemu.Fault{Method: "sendMessage", Count: 100, Status: 503})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	_, err := m.Send(ctx, Reply{ChatID: 7, Text: "hello"})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	requests := emu.Stats().Requests["sendMessage"]
	time.Sleep(2 * time.Second)
	assert.LessOrEqual(t, emu.Stats().Requests["sendMessage"], requests+1, "kept retrying a send nobody waits for")
}

func TestSenderClose(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{})
	tg := newTelegram(t, emu, nil)
	emu.Fail(telegramemu.Fault{Method: "sendMessage", Count: 100, Status: 503})
	errs := make(chan error, 1)
	go func() {
		_, err := tg.Messenger().Send(context.Background(), Reply{ChatID: 7, Text: "hello"})
		errs <- err
	}()
	waitUntil(t, "the first attempt failed", func() bool { return emu.Stats().Requests["sendMessage"] > 0 })
	tg.Close()

	assert.True(t, errors.Is(<-errs, ErrClosed))
	_, err := tg.Messenger().Send(context.Background(), Reply{ChatID: 7, Text: "again"})
	assert.ErrorIs(t, err, ErrClosed)
}

func TestAnswerCallback(t *testing.T) {
	t.Parallel()
	emu, m := newSenderUnderTest(t)
	id, err := m.Send(context.Background(), withButtons(7, "Delete web?"))
	require.NoError(t, err)
	_, callbackID := emu.PressButton(private(7), alice, id, "yes")

	require.NoError(t, m.AnswerCallback(context.Background(), callbackID, "deleting web"))
	answered, text := emu.CallbackAnswer(callbackID)
	assert.True(t, answered)
	assert.Equal(t, "deleting web", text)
}
