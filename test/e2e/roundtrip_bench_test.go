package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/teleop/teleop/test/telegramemu"
)

// BenchmarkChatRoundTrip measures, on loopback, the time from a user's
// message reaching the Bot API emulator to the bot's reply arriving there,
// for /list (a read) and /scale (a SubjectAccessReview and an API write), over
// 1,000 commands from 50 private chats, against the real teleop binary and the
// local control plane. Each chat writes once every two seconds, so the 50
// chats stay under Telegram's 30 messages a second and 1 a second per chat:
// the figure is teleop's latency, not its pacing of replies.
//
//	go test -count=1 -run '^$' -bench BenchmarkChatRoundTrip -benchtime=1x ./test/e2e/
func BenchmarkChatRoundTrip(b *testing.B) {
	for _, command := range []string{"/list", "/scale"} {
		b.Run(strings.TrimPrefix(command, "/"), func(b *testing.B) {
			for range b.N {
				p50, p99 := chatRoundTrips(b, command, 50, 1000)
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			}
		})
	}
}

func chatRoundTrips(b *testing.B, command string, chats, total int) (p50, p99 time.Duration) {
	e := newEnv(b)
	e.start("--admins", "9000")
	admin := e.user(9000, "admin") // creates the app, so its notices go elsewhere
	admin.say("/create "+e.appsNS+"/web nginx:1.27 1", "created")
	users := make([]*user, chats)
	for i := range users {
		users[i] = e.user(int64(10_000+i), "bench")
		users[i].grant("teleop-editor")
		users[i].say("/ns "+e.appsNS, e.appsNS)
	}
	time.Sleep(2 * time.Second) // every chat's pacing window is clear
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	perChat := total / chats
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(2 * time.Second)
			defer pace.Stop()
			for n := range perChat {
				text := command
				if command == "/scale" {
					text = fmt.Sprintf("/scale web %d", (i+n)%5+1)
				}
				last := lastMessageID(e.emu.Messages(u.chat.ID))
				start := time.Now()
				e.emu.SendText(u.chat, u.from, text)
				_, err := e.emu.WaitMessage(context.Background(), u.chat.ID, func(m telegramemu.Message) bool { return m.ID > last })
				require.NoError(b, err)
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				mu.Unlock()
				<-pace.C
			}
		}()
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return latencies[len(latencies)/2], latencies[len(latencies)*99/100]
}

func lastMessageID(msgs []telegramemu.Message) int {
	if len(msgs) == 0 {
		return 0
	}
	return msgs[len(msgs)-1].ID
}
