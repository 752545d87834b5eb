package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// Strangers cost little: one user without any RoleBinding sends 1,000
// messages in 10 s (commands that would list, create, scale and pick a
// namespace). teleop drops what is over the user's budget before any work,
// remembers the API server's refusals, and so the API server sees at most
// maxStrangerReviews SubjectAccessReviews and not one write for them,
// while another chat's /list keeps being answered (its latency is logged,
// not asserted: it depends on the transport's batching).
//
// The cluster is this test's own, so the API server's request counters
// (apiserver_request_total, read before and after) count only what this
// teleop asked, whatever other packages do meanwhile.
func TestStrangerFloodCostsLittle(t *testing.T) {
	c := ownCluster(t)
	e := newEnvOn(t, c, telegramemu.Options{Limits: telegramemu.Limits{Off: true}})
	const adminID = 1001
	e.start("--admins", fmt.Sprint(adminID))
	alice := e.user(adminID, "alice")
	stranger := e.user(6666, "stranger")
	alice.say("/ns "+e.appsNS, "now works in")
	alice.say("/create web nginx:1.27 1", "created")
	e.eventually("web to be Ready", time.Minute, func() (bool, error) {
		app := e.teleApp("web")
		return app != nil && app.Status.Phase == v1alpha1.PhaseReady, nil
	})
	time.Sleep(5 * time.Second) // its last status and announcement writes are done

	writes := watchChatStateWrites(t, e.kube, e.systemNS)
	before := apiRequests(t, e.kube)

	// Alice asks for /list every 250 ms throughout and until the flood is
	// handled; each answer's latency is kept.
	var latencies []time.Duration
	unanswered := 0
	aliceDone := make(chan struct{})
	stopAlice := make(chan struct{})
	go func() {
		defer close(aliceDone)
		for {
			select {
			case <-stopAlice:
				return
			case <-time.After(250 * time.Millisecond):
			}
			if took, ok := alice.ask("/list", "web", 30*time.Second); ok {
				latencies = append(latencies, took)
			} else {
				unanswered++
			}
		}
	}()

	commands := []string{"/ns", "/list", "/create x nginx 1", "/scale web 3", "/ns default", "/status web", "hello"}
	begin := time.Now()
	for i := range strangerMessages {
		stranger.send(commands[i%len(commands)])
		time.Sleep(time.Until(begin.Add(time.Duration(i+1) * floodDuration / strangerMessages)))
	}
	t.Logf("%d messages sent in %v", strangerMessages, time.Since(begin).Round(time.Millisecond))
	time.Sleep(measureAfter) // what the flood costs while it is handled
	drained := time.Since(begin)
	close(stopAlice)
	<-aliceDone
	after := apiRequests(t, e.kube)

	namespaces, err := e.kube.CoreV1().Namespaces().List(ctx(t), metav1.ListOptions{})
	require.NoError(t, err)
	bound := maxStrangerReviews(len(namespaces.Items), drained)
	reviews := after.count("subjectaccessreviews", "POST") - before.count("subjectaccessreviews", "POST")
	t.Logf("%v from the flood's start (%d updates still queued at Telegram); API server meanwhile: %d SubjectAccessReviews (bound %d), %d namespace lists, writes %v; chat state written: %v",
		drained.Round(time.Millisecond), e.emu.PendingUpdates(), reviews, bound, after.count("namespaces", "LIST")-before.count("namespaces", "LIST"), after.writesSince(before), writes.names())
	assert.LessOrEqual(t, reviews, bound, "SubjectAccessReviews")
	for _, resource := range []string{"teleapps", "telechats"} {
		assert.Zero(t, after.writesSince(before)[resource], "writes to %s", resource)
	}
	assert.Empty(t, writes.names(), "ConfigMaps of chat state written (the transport's checkpoint aside)")
	assert.Zero(t, after.count("namespaces", "LIST")-before.count("namespaces", "LIST"), "namespace lists")

	notices := 0
	for _, m := range e.emu.Messages(stranger.chat.ID) {
		notices += strings.Count(m.Text, "sending faster than I answer")
	}
	assert.Equal(t, 1, notices, "the stranger is told once a minute that messages are dropped")
	answered := len(e.emu.Messages(stranger.chat.ID))
	assert.Less(t, answered, strangerMessages/10, "messages the stranger got back")

	// An update let through the inbound limits costs at most two writes of
	// the transport's checkpoint (accepted while its chat is busy, then
	// started); a refused one costs none, so the flood's cost is bounded by
	// the stranger's budget, not by what it sends.
	admitted := len(latencies) + unanswered + bot.DefaultUserBurst + int(drained.Seconds())*bot.DefaultUserRate
	checkpointWrites := after.writesSince(before)["configmaps"]
	t.Logf("checkpoint writes: %d for %d stranger messages and %d of alice's (bound %d)", checkpointWrites, strangerMessages, len(latencies)+unanswered, 2*admitted)
	assert.LessOrEqual(t, checkpointWrites, 2*admitted, "checkpoint writes")

	slices.Sort(latencies)
	require.NotEmpty(t, latencies, "alice's /list was never answered during the flood")
	t.Logf("stranger got %d messages back; alice's /list during the flood: %d answered (%d not within 30 s), p50 %v, p99 %v, max %v",
		answered, len(latencies), unanswered, latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])
}

const (
	strangerMessages = 1000
	floodDuration    = 10 * time.Second
	// measureAfter is how long after the flood's start the cost is read.
	// The cost is a rate (see maxStrangerReviews); a transport that fetches
	// the next batch only once the last is handled takes minutes to drain
	// the flood, at that rate.
	measureAfter = 30 * time.Second
)

// maxStrangerReviews bounds the SubjectAccessReviews a stranger's flood may
// cost in a time: the stranger asks at most 5 distinct questions besides one
// per namespace (/ns: list everywhere and in each namespace; list, create,
// update and get in the chat's namespace), and the authorizer asks each
// again only after DeniedTTL. The inbound limits keep what is handled at
// most a burst of 10, then 1 a second, counted from receipt.
func maxStrangerReviews(namespaces int, handled time.Duration) int {
	questions := 5 + namespaces
	return questions * (int(handled/access.DeniedTTL) + 1)
}

// send writes text without waiting for an answer.
func (u *user) send(text string) { u.e.emu.SendText(u.chat, u.from, text) }

// ask sends text and reports how long until a new message containing want
// came, or false after timeout; unlike say it never fails the test, so it
// may run on any goroutine.
func (u *user) ask(text, want string, timeout time.Duration) (time.Duration, bool) {
	before := len(u.e.emu.Messages(u.chat.ID))
	begin := time.Now()
	u.send(text)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := u.e.emu.WaitMessage(ctx, u.chat.ID, func(telegramemu.Message) bool {
		msgs := u.e.emu.Messages(u.chat.ID)
		for _, m := range msgs[min(before, len(msgs)):] {
			if strings.Contains(m.Text, want) {
				return true
			}
		}
		return false
	})
	return time.Since(begin), err == nil
}

// ownCluster starts a control plane for this test alone, with the CRDs.
func ownCluster(t *testing.T) *cluster.Cluster {
	t.Helper()
	cluster.Shared(t) // skips loudly under TELEOP_SKIP_CLUSTER=1, like every cluster test
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{})
	require.NoError(t, err, "start a private control plane")
	t.Cleanup(c.Stop)
	require.NoError(t, cluster.InstallCRDs(ctx, c.RESTConfig(), cluster.RepoRoot()+"/deploy/crds"))
	return c
}

// apiCounts are the API server's request counters by resource and verb.
type apiCounts map[[2]string]int

func apiRequests(t *testing.T, kube kubernetes.Interface) apiCounts {
	t.Helper()
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	require.NoError(t, err, "read the API server's metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	require.NoError(t, err)
	counts := apiCounts{}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		counts[[2]string{labels["resource"], labels["verb"]}] += int(m.GetCounter().GetValue())
	}
	return counts
}

func (c apiCounts) count(resource, verb string) int { return c[[2]string{resource, verb}] }

// writesSince sums the writing verbs by resource since before.
func (c apiCounts) writesSince(before apiCounts) map[string]int {
	out := map[string]int{}
	for key, n := range c {
		resource, verb := key[0], key[1]
		if slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"}, verb) && resource != "subjectaccessreviews" {
			if d := n - before[key]; d > 0 {
				out[resource] += d
			}
		}
	}
	return out
}

// chatStateWrites records the ConfigMaps of teleop's namespace written from
// now on, except the transport's bookkeeping of accepted updates (its cost
// is bounded separately).
type chatStateWrites struct {
	mu      sync.Mutex
	written map[string]int
}

func watchChatStateWrites(t *testing.T, kube kubernetes.Interface, namespace string) *chatStateWrites {
	t.Helper()
	list, err := kube.CoreV1().ConfigMaps(namespace).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kube.CoreV1().ConfigMaps(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	require.NoError(t, err)
	cw := &chatStateWrites{written: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			obj, ok := ev.Object.(metav1.Object)
			if !ok || ev.Type == watch.Bookmark || transportBookkeeping(obj) {
				continue
			}
			cw.mu.Lock()
			cw.written[obj.GetName()]++
			cw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return cw
}

// transportBookkeeping: the checkpoint of accepted updates (cmd's
// "teleop-checkpoint").
func transportBookkeeping(obj metav1.Object) bool {
	return obj.GetName() == "teleop-checkpoint"
}

func (cw *chatStateWrites) names() map[string]int {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return maps.Clone(cw.written)
}
