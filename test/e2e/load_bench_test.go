package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// BenchmarkRepliesUnderLoad is issue 10's "replies first" load, against the
// real teleop binary, the emulator with Telegram's flood limits and the local
// control plane: 50 private chats, each with its own app (so every /scale
// brings live progress edits of its reply and Scaled/Ready notices to the
// chat), each sending a command every 2 s, /scale and /list in turn. It
// reports the reply latency, from the moment the emulator makes the update
// available to the reply's arrival there, p50 and p99 per command, and the
// notices delivered per second and per /scale.
//
//	TELEOP_LOAD_SECONDS=60 go test -count=1 -run '^$' -bench BenchmarkRepliesUnderLoad -benchtime=1x ./test/e2e/
func BenchmarkRepliesUnderLoad(b *testing.B) {
	seconds := 60
	if s, err := strconv.Atoi(os.Getenv("TELEOP_LOAD_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	for range b.N {
		r := repliesUnderLoad(b, 50, time.Duration(seconds)*time.Second)
		for _, command := range []string{"scale", "list"} {
			lat := r.latencies[command]
			b.ReportMetric(ms(percentile(lat, 50)), command+"-p50-ms")
			b.ReportMetric(ms(percentile(lat, 99)), command+"-p99-ms")
		}
		b.ReportMetric(float64(r.notices)/r.window.Seconds(), "notices/s")
		b.ReportMetric(float64(r.notices)/float64(max(len(r.latencies["scale"]), 1)), "notices/scale")
		b.ReportMetric(float64(r.throttled), "429s")
	}
}

type loadResult struct {
	latencies map[string][]time.Duration
	notices   int
	window    time.Duration
	throttled int
}

func repliesUnderLoad(b *testing.B, chats int, run time.Duration) loadResult {
	e := newEnv(b)
	e.start()
	users := make([]*user, chats)
	for i := range users {
		users[i] = e.user(int64(20_000+i), "load")
		users[i].grant("teleop-editor")
		users[i].say("/ns "+e.appsNS, e.appsNS)
		users[i].say(fmt.Sprintf("/create app-%d nginx:1.27 1", i), "created")
	}
	e.eventually("every app to be announced ready", 2*time.Minute, func() (bool, error) {
		for _, u := range users {
			if countNotices(e.emu.Messages(u.chat.ID)) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	time.Sleep(2 * time.Second) // every chat's bucket is full again
	noticesBefore, throttledBefore := 0, e.emu.Stats().TooManyRequests
	for _, u := range users {
		noticesBefore += countNotices(e.emu.Messages(u.chat.ID))
	}

	var (
		mu        sync.Mutex
		latencies = map[string][]time.Duration{}
		wg        sync.WaitGroup
	)
	start := time.Now()
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 2 * time.Second / time.Duration(chats)) // spread the chats over the 2 s
			pace := time.NewTicker(2 * time.Second)
			defer pace.Stop()
			for n := 0; time.Since(start) < run; n++ {
				command, text, isReply := "list", "/list", func(m telegramemu.Message) bool { return strings.HasPrefix(m.Text, "Apps in") }
				if n%2 == 0 {
					app := fmt.Sprintf("app-%d", i)
					command, text = "scale", fmt.Sprintf("/scale %s %d", app, n/2%2+2)
					isReply = func(m telegramemu.Message) bool { return !isNotice(m) && strings.Contains(m.Text, "<b>"+app+"</b>") }
				}
				last := lastMessageID(e.emu.Messages(u.chat.ID))
				sent := time.Now()
				e.emu.SendText(u.chat, u.from, text)
				waitCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
				reply, err := e.emu.WaitMessage(waitCtx, u.chat.ID, func(m telegramemu.Message) bool { return m.ID > last && isReply(m) })
				cancel()
				require.NoError(b, err, "no reply to %s in chat %d", text, u.chat.ID)
				mu.Lock()
				latencies[command] = append(latencies[command], reply.Sent.Sub(sent))
				mu.Unlock()
				<-pace.C
			}
		}()
	}
	wg.Wait()
	window := time.Since(start)
	notices := -noticesBefore
	for _, u := range users {
		notices += countNotices(e.emu.Messages(u.chat.ID))
	}
	return loadResult{latencies: latencies, notices: notices, window: window, throttled: e.emu.Stats().TooManyRequests - throttledBefore}
}

// noticeIcons open every notice (commands/progress.FormatNotice). A reply's
// message opens with them only once a progress edit made it so.
var noticeIcons = []string{"✅", "📈", "📉", "🗑", "⚠️", "❌", "ℹ️"}

func isNotice(m telegramemu.Message) bool {
	if m.Edits > 0 {
		return false
	}
	for _, icon := range noticeIcons {
		if strings.HasPrefix(m.Text, icon) {
			return true
		}
	}
	return false
}

// countNotices counts the notices in msgs, joined ones each on its own.
func countNotices(msgs []telegramemu.Message) int {
	n := 0
	for _, m := range msgs {
		if isNotice(m) {
			n += strings.Count(m.Text, "\n\n") + 1
		}
	}
	return n
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	return sorted[min(len(sorted)*p/100, len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
