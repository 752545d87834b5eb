package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/test/telegramemu"
)

// BenchmarkUpdateSoak is issue 10's "never wedged" soak: the real teleop
// binary polls TELEOP_SOAK_UPDATES updates (default 50,000; `make soak` runs
// 1,000,000) from the emulator as fast as it takes them, from 200 chats (150
// private, 50 groups), 98% chatter and 2% commands (/list, /whoami). It
// reports the rate, the bytes teleop keeps in the cluster (every ConfigMap
// of --namespace) and its heap in use at each tenth of the run, and checks
// at the end that a new chat still gets an answer.
//
//	TELEOP_SOAK_UPDATES=50000 go test -count=1 -run '^$' -bench BenchmarkUpdateSoak -benchtime=1x -timeout 2h ./test/e2e/
func BenchmarkUpdateSoak(b *testing.B) {
	total := 50_000
	if n, err := strconv.Atoi(os.Getenv("TELEOP_SOAK_UPDATES")); err == nil && n > 0 {
		total = n
	}
	for range b.N {
		updateSoak(b, total)
	}
}

func updateSoak(b *testing.B, total int) {
	const privateChats, groups = 150, 50
	e := newEnvWith(b, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	admins := make([]string, privateChats)
	for i := range admins {
		admins[i] = strconv.Itoa(30_000 + i)
	}
	metrics := freeAddr(b)
	// The inbound limits are lifted: the soak drives the whole path, not the refusal.
	args := append(e.baseArgs(), "--admins", strings.Join(admins, ","), "--metrics-addr", metrics,
		"--user-rate", "100000", "--user-burst", "100000", "--chat-rate", "100000", "--chat-burst", "100000")
	p := e.spawn("run", args...)
	p.waitReady(b)

	start := time.Now()
	var heap []string
	for sent := 0; sent < total; {
		if e.emu.PendingUpdates() > 1000 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		for range min(500, total-sent) {
			chat, from, text := soakUpdate(sent, privateChats, groups)
			e.emu.SendText(chat, from, text)
			sent++
			if sent%(total/10) == 0 {
				heap = append(heap, fmt.Sprintf("%d:%.1fMiB", sent, metric(b, metrics, "go_memstats_heap_inuse_bytes")/(1<<20)))
			}
		}
	}
	e.eventually("every update to be taken", 10*time.Minute, func() (bool, error) { return e.emu.PendingUpdates() == 0, nil })
	elapsed := time.Since(start)

	newcomer := e.user(39_999, "newcomer")
	newcomer.say("/whoami", "telegram:39999")
	cms, err := e.kube.CoreV1().ConfigMaps(e.systemNS).List(context.Background(), metav1.ListOptions{})
	require.NoError(b, err)
	stateBytes := 0
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			stateBytes += len(k) + len(v)
		}
	}
	b.Logf("%d updates in %v; heap in use by tenths: %s; %d ConfigMaps in --namespace", total, elapsed.Round(time.Second), strings.Join(heap, " "), len(cms.Items))
	b.ReportMetric(float64(total)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(stateBytes), "state-bytes")
	b.ReportMetric(metric(b, metrics, "go_memstats_heap_inuse_bytes")/(1<<20), "heap-MiB")
	b.ReportMetric(metric(b, metrics, "process_resident_memory_bytes")/(1<<20), "rss-MiB")
	b.ReportMetric(metric(b, metrics, "teleop_telegram_updates_dropped_total"), "dropped")
}

// soakUpdate is the i-th update of the soak: chats in turn, every 50th a
// command.
func soakUpdate(i, privateChats, groups int) (telegramemu.Chat, telegramemu.User, string) {
	n := i % (privateChats + groups)
	from := telegramemu.User{ID: int64(30_000 + i%privateChats), Username: "soak", FirstName: "soak"}
	chat := telegramemu.Chat{ID: from.ID, Type: "private"}
	if n >= privateChats {
		chat = telegramemu.Chat{ID: -int64(40_000 + n), Type: "group", Title: "soak"}
	}
	switch i % 100 {
	case 0:
		return chat, from, "/list"
	case 50:
		return chat, from, "/whoami"
	}
	return chat, from, fmt.Sprintf("hello %d", i)
}

// metric reads one unlabelled sample from teleop's /metrics.
func metric(b *testing.B, addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(b, err)
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(b, err)
			return v
		}
	}
	return 0
}
