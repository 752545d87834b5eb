package bot

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// sent is one message a user sends in a test.
type sent struct {
	chat telegramemu.Chat
	from telegramemu.User
	n    int
}

func TestLimitInboundDropsWhatIsOverBudgetAndSaysSoOnce(t *testing.T) {
	carol := telegramemu.User{ID: 1003, Username: "carol"}
	limits := InboundLimits{UserRate: 1, UserBurst: 5, ChatRate: 1, ChatBurst: 8}
	tests := []struct {
		name string
		sent []sent
		// want handled per chat, and the chats told to slow down.
		handled map[int64]int
		told    []int64
	}{
		{
			name:    "one user floods a private chat",
			sent:    []sent{{private(alice.ID), alice, 40}},
			handled: map[int64]int{alice.ID: 5},
			told:    []int64{alice.ID},
		},
		{
			name:    "a flood does not cost another chat its budget",
			sent:    []sent{{private(alice.ID), alice, 40}, {private(bob.ID), bob, 3}},
			handled: map[int64]int{alice.ID: 5, bob.ID: 3},
			told:    []int64{alice.ID},
		},
		{
			name:    "a group's members share the group's budget",
			sent:    []sent{{group(-50), alice, 5}, {group(-50), bob, 5}, {group(-50), carol, 5}},
			handled: map[int64]int{-50: 8},
			told:    []int64{-50},
		},
		{
			name:    "within budget nothing is dropped",
			sent:    []sent{{private(alice.ID), alice, 5}, {group(-50), bob, 4}},
			handled: map[int64]int{alice.ID: 5, -50: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
			tg := newTelegram(t, emu, nil)
			rec := newRecorder()
			reg := prometheus.NewRegistry()
			l := limits
			l.Registerer, l.Logger = reg, testLogger(t)
			run(t, tg, LimitInbound(rec, tg.Messenger(), l))

			total := 0
			for _, s := range tt.sent {
				for i := range s.n {
					emu.SendText(s.chat, s.from, fmt.Sprintf("/list %d", i))
				}
				total += s.n
			}
			waitUntil(t, "every update was handled or dropped", func() bool {
				return len(rec.handled())+int(refusedTotal(t, reg)) == total
			})
			got := map[int64]int{}
			for _, u := range rec.handled() {
				got[u.ChatID]++
			}
			assert.Equal(t, tt.handled, got)
			for _, s := range tt.sent {
				want := 0
				for _, chat := range tt.told {
					if chat == s.chat.ID {
						want = 1
					}
				}
				waitUntil(t, "the notices were sent", func() bool { return slowDownNotices(emu, s.chat.ID) >= want })
				assert.Equal(t, want, slowDownNotices(emu, s.chat.ID), "slow-down notices in chat %d", s.chat.ID)
			}
		})
	}
}

// Updates are counted when they were received, whenever their turn comes:
// the bucket refills with the time between receipts, and a refused user is
// told again only after the notice gap.
func TestLimitInboundCountsFromReceiptAndTellsAgainAfterTheGap(t *testing.T) {
	emu := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	tg := newTelegram(t, emu, nil)
	rec := newRecorder()
	h := LimitInbound(rec, tg.Messenger(), InboundLimits{UserRate: 1, UserBurst: 2, NoticeGap: time.Minute, Logger: testLogger(t)})
	start := time.Now().Add(-time.Hour) // received long ago, handled now
	flood := func(at time.Duration) {
		for range 10 {
			h.HandleUpdate(context.Background(), Update{ChatID: alice.ID, ChatType: "private", UserID: alice.ID, Text: "/list", Received: start.Add(at)})
		}
	}

	// The notices go out in the background, one chat's in order.
	flood(0)
	require.Len(t, rec.handled(), 2, "the burst")
	waitUntil(t, "the first notice", func() bool { return slowDownNotices(emu, alice.ID) == 1 })

	flood(30 * time.Second) // refilled, but within the notice gap
	assert.Len(t, rec.handled(), 4)

	flood(90 * time.Second)
	assert.Len(t, rec.handled(), 6)
	waitUntil(t, "the second notice", func() bool { return slowDownNotices(emu, alice.ID) >= 2 })
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 2, slowDownNotices(emu, alice.ID), "told once within the gap, again after it")
}

func TestBucketsForgetTheLeastRecentlySeen(t *testing.T) {
	b := newBuckets(1, 1, 3, time.Minute)
	now := time.Unix(1e9, 0)
	for id := range int64(1000) {
		b.take(id, now)
	}
	assert.Len(t, b.byID, 3)
	assert.Equal(t, 3, b.order.Len())
	assert.ElementsMatch(t, []int64{997, 998, 999}, keys(b))

	b.take(997, now) // seen again: now the most recent
	b.take(5000, now)
	assert.ElementsMatch(t, []int64{997, 999, 5000}, keys(b))
}

func keys(b *buckets) []int64 {
	var out []int64
	for id := range b.byID {
		out = append(out, id)
	}
	return out
}

func refusedTotal(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, f := range families {
		if f.GetName() != "teleop_inbound_refused_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

func slowDownNotices(emu *telegramemu.Server, chatID int64) int {
	n := 0
	for _, m := range emu.Messages(chatID) {
		n += strings.Count(m.Text, "sending faster than I answer")
	}
	return n
}

// countingCheckpoint is a MemoryCheckpoint that counts its saves.
type countingCheckpoint struct {
	MemoryCheckpoint
	saves atomic.Int64
}

func (c *countingCheckpoint) Save(ctx context.Context, data []byte) error {
	c.saves.Add(1)
	return c.MemoryCheckpoint.Save(ctx, data)
}

// A flood refused by the inbound limits costs no write of the checkpoint:
// the transport admits updates before accepting them, confirms the refused
// ones to Telegram without saving, and a restart runs none of them.
func TestRefusedUpdatesCostNoCheckpointWrite(t *testing.T) {
	t.Parallel()
	emu := telegramemu.New(t, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	cp := &countingCheckpoint{}
	const flood, burst = 200, 3
	for i := range flood {
		emu.SendText(private(alice.ID), alice, fmt.Sprintf("/list %d", i))
	}
	rec := newRecorder()
	tg := newTelegram(t, emu, func(c *Config) { c.Checkpoint = cp })
	stop := run(t, tg, LimitInbound(rec, tg.Messenger(), InboundLimits{UserRate: 0.001, UserBurst: burst, Logger: testLogger(t)}))
	rec.waitFor(t, burst)
	waitUntil(t, "the flood is confirmed", func() bool { return emu.PendingUpdates() == 0 })
	require.NoError(t, stop())
	// Each admitted update costs at most two saves (accepted while its chat
	// is busy, then started); the refused ones none.
	assert.LessOrEqual(t, cp.saves.Load(), int64(2*burst), "checkpoint saves for %d updates, %d admitted", flood, burst)
	assert.Empty(t, savedState(t, &cp.MemoryCheckpoint).Pending)

	again := newRecorder()
	run(t, newTelegram(t, emu, func(c *Config) { c.Checkpoint = cp }), again)
	emu.SendText(private(bob.ID), bob, "/list")
	again.waitFor(t, 1)
	assert.Equal(t, []string{"/list"}, again.texts(bob.ID), "a refused update ran after the restart")
	assert.Len(t, again.handled(), 1)
}
