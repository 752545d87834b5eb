package bot

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/teleop/teleop/test/telegramemu"
)

// fanOut sends one message with buttons (never coalesced) to each chat at
// once and waits for all of them.
func fanOut(b *testing.B, m Messenger, chats []int64, round int) {
	var wg sync.WaitGroup
	for _, chat := range chats {
		wg.Go(func() {
			if _, err := m.Send(context.Background(), withButtons(chat, fmt.Sprintf("round %d", round))); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// BenchmarkSenderFanOut sends rounds of one message to each of 100 chats
// (90 private, 10 groups) through the sender under Telegram's real limits,
// and reports the delivery rate as a fraction of what the limits allow
// (30 a second overall), next to the rate of the same traffic sent with
// flood control off in the same run (the transport's own ceiling).
func BenchmarkSenderFanOut(b *testing.B) {
	chats := make([]int64, 100)
	for i := range chats {
		chats[i] = int64(i + 1)
		if i >= 90 {
			chats[i] = -int64(i + 1)
		}
	}
	const allowedPerSecond = 30.0

	raw := telegramemu.New(b, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	rawSender := newTelegram(b, raw, func(c *Config) {
		unlimited := Rate{Every: time.Nanosecond, Burst: 1000}
		c.Limits = Limits{PerChat: unlimited, PerGroup: unlimited, Global: unlimited}
	}).Messenger()
	start := time.Now()
	fanOut(b, rawSender, chats, 0)
	rawRate := float64(len(chats)) / time.Since(start).Seconds()

	emu := telegramemu.New(b, telegramemu.Options{})
	m := newTelegram(b, emu, nil).Messenger()
	sent := 0
	start = time.Now()
	for b.Loop() {
		fanOut(b, m, chats, sent)
		sent += len(chats)
	}
	rate := float64(sent) / time.Since(start).Seconds()

	if n := emu.Stats().TooManyRequests; n > 0 {
		b.Fatalf("%d answers 429", n)
	}
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rate/allowedPerSecond, "fraction_of_allowed")
	b.ReportMetric(rawRate, "unthrottled_msgs/s")
}
