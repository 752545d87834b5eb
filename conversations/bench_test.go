package conversations

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleopfake "github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
	"github.com/teleop/teleop/test/cluster"
)

const benchConversations = 10_000

// discard is a Messenger that only hands out message IDs.
type discard struct{ ids atomic.Int64 }

func (d *discard) Send(context.Context, bot.Reply) (int, error) { return int(d.ids.Add(1)), nil }
func (d *discard) AnswerCallback(context.Context, string, string) error {
	return nil
}

// BenchmarkConversationStep keeps 10,000 conversations open (10,000
// ConfigMaps) and measures one step (an answer, validated, persisted, the
// next question sent): its p50/p99 latency, against the p99 of a bare
// ConfigMap update on the same server in the same run, the heap the engine
// holds per open conversation, and how many ConfigMap writes the steps cost.
// It runs on the real API server only: a fake clientset would count its own
// copy of every ConfigMap as the engine's heap.
func BenchmarkConversationStep(b *testing.B) {
	c := cluster.Shared(b)
	cfg := c.RESTConfig()
	var writes atomic.Int64
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt, &writes} })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	teleop, err := versioned.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	namespace := c.Namespace(b, "bench-")
	bareUpdate := bareUpdater(b, client, namespace)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	users := make([]int64, benchConversations)
	for i := range users {
		users[i] = int64(1000 + i)
	}
	var admins []string
	for _, u := range users {
		admins = append(admins, identity.User(u))
	}
	e := NewEngine(Config{
		Messenger:  &discard{},
		Apps:       apps.New(teleopfake.NewSimpleClientset(), record.NewFakeRecorder(1)),
		Authorizer: access.New(client, admins),
		Namespaces: startChats(b, teleop, namespace),
		ConfigMaps: client.CoreV1().ConfigMaps(namespace),
		Logger:     slog.New(slog.DiscardHandler),
	})
	parallel(benchConversations, func(i int) {
		if err := e.Start(ctx, "create", bot.Update{ChatID: -5, UserID: users[i]}, nil); err != nil {
			b.Error(err)
		}
	})
	if b.Failed() {
		return
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perConversation := float64(after.HeapAlloc-before.HeapAlloc) / benchConversations

	// Each user cycles name → image → replicas → a fresh start.
	answers := []string{"web", "nginx:1.27", "3"}
	var next atomic.Int64
	step := func() (time.Duration, error) {
		k := int(next.Add(1)) - 1
		user := users[k%benchConversations]
		round := k / benchConversations % (len(answers) + 1)
		start := time.Now()
		var err error
		if round == len(answers) {
			err = e.Start(ctx, "create", bot.Update{ChatID: -5, UserID: user}, nil)
		} else {
			_, err = e.Handle(ctx, bot.Update{ChatID: -5, UserID: user, Text: answers[round]})
		}
		return time.Since(start), err
	}

	// Under load: 64 chats answering at once.
	const concurrentSteps = 5000
	concurrent := make([]time.Duration, concurrentSteps)
	writes.Store(0)
	loadStart := time.Now()
	parallel(concurrentSteps, func(i int) {
		var err error
		if concurrent[i], err = step(); err != nil {
			b.Error(err)
		}
	})
	loadTime := time.Since(loadStart)
	writesPerStep := float64(writes.Load()) / concurrentSteps

	// One step at a time: the latency a user sees. Each step is followed by
	// a bare ConfigMap update, so that both see the same load of the shared
	// machine.
	latencies := make([]time.Duration, b.N)
	bare := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		var err error
		if latencies[i], err = step(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bare[i] = bareUpdate()
		b.StartTimer()
	}
	b.StopTimer()
	p99 := percentile(latencies, 99)
	b.ReportMetric(ms(percentile(latencies, 50)), "p50-ms/step")
	b.ReportMetric(ms(p99), "p99-ms/step")
	b.ReportMetric(ms(percentile(bare, 99)), "p99-ms/bare-update")
	b.ReportMetric(float64(p99)/float64(percentile(bare, 99)), "p99-vs-raw-update")
	b.ReportMetric(ms(percentile(concurrent, 99)), "p99-ms/step@64")
	b.ReportMetric(concurrentSteps/loadTime.Seconds(), "steps/s@64")
	b.ReportMetric(writesPerStep, "cm-writes/step@64")
	b.ReportMetric(perConversation, "heap-B/conversation")
}

// countWrites counts ConfigMap creates and updates on the wire.
type countWrites struct {
	next   http.RoundTripper
	writes *atomic.Int64
}

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if (r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(r.URL.Path, "/configmaps") {
		c.writes.Add(1)
	}
	return c.next.RoundTrip(r)
}

func percentile(d []time.Duration, p int) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[(len(d)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// parallel runs fn(0..n-1) on 64 goroutines, as many chats answering at once.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// bareUpdater returns the baseline: one update of a small ConfigMap, timed.
func bareUpdater(b *testing.B, client kubernetes.Interface, namespace string) func() time.Duration {
	cms := client.CoreV1().ConfigMaps(namespace)
	cm, err := cms.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "baseline"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	return func() time.Duration {
		i++
		cm.Data = map[string]string{"i": fmt.Sprint(i)}
		start := time.Now()
		if cm, err = cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
}
