package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/telegramemu"
)

// The canaries: a bot token and a webhook secret recognisable wherever they
// might leak. The search looks for their secret parts, which no escaping
// changes.
const (
	canaryToken  = "123456:SECRETleakCANARY"
	canarySecret = "hookSECRETcanary"
)

var canaries = []string{"SECRETleakCANARY", canarySecret}

// The chats of the hunt: a user who asks for /help, and a chat that blocked
// the bot and is told about a TeleApp.
const (
	aliceID     = 1001
	blockedChat = 2002
)

// teleop is run with a recognisable token and webhook secret through every
// fault the emulator can provoke, in both log formats. Neither the token nor
// the secret shows up in its output, its probes, its metrics, the cluster's
// objects and Events, or the chats; and each fault demonstrably happened
// (its redacted error is in the log), so the search is not vacuous.
func TestSecretsNeverLeak(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			h := &leakHunt{e: newEnvWith(t, telegramemu.Options{Token: canaryToken}), format: format, seen: map[string]string{}}
			h.startupFaults()
			h.pollingFaults()
			h.webhookFaults()
			h.assertNoLeak()
		})
	}
}

// leakHunt runs the faults of one log format and collects everything teleop
// said or wrote, by where it was seen.
type leakHunt struct {
	e      *env
	format string
	seen   map[string]string
	runs   int
}

// args are the flags of a teleop run against endpoint.
func (h *leakHunt) args(endpoint, metricsAddr string, extra ...string) []string {
	return append([]string{
		"--kubeconfig", h.e.cluster.Kubeconfig,
		"--namespace", h.e.systemNS,
		"--watch-namespace", h.e.appsNS,
		"--telegram-api-endpoint", endpoint,
		"--telegram-token", canaryToken,
		"--telegram-timeout", "2s",
		"--metrics-addr", metricsAddr,
		"--log-format", h.format,
	}, extra...)
}

// failedStart runs teleop, expects it to stop with exit code, and checks its
// output says want.
func (h *leakHunt) failedStart(name string, code int, want string, args []string) {
	t := h.e.t
	t.Helper()
	p := h.e.spawn("run", args...)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: teleop did not stop; output:\n%s", name, p.log.String())
	}
	h.keep("output of teleop ("+name+")", p.log.String())
	assert.Equal(t, code, p.cmd.ProcessState.ExitCode(), "%s: exit code; output:\n%s", name, p.log.String())
	assert.Contains(t, readable(p.log.String()), want, "%s: the fault happened and was told", name)
}

// startupFaults: getMe fails in each way, and a bad webhook URL is refused.
func (h *leakHunt) startupFaults() {
	e := h.e
	metrics := freeAddr(e.t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(e.t, err)
	closed := "http://" + ln.Addr().String() + "/bot%s/%s"
	require.NoError(e.t, ln.Close())
	otherBot := telegramemu.New(e.t, telegramemu.Options{Token: "654321:OTHERbot"})

	h.failedStart("refused", 1, "/bot<token>/getMe: connection refused", h.args(closed, metrics))
	h.failedStart("no such host", 1, "cannot resolve nonexistent.invalid", h.args("http://nonexistent.invalid/bot%s/%s", metrics))
	e.emu.Fail(telegramemu.Fault{Method: "getMe", Count: 1, Delay: 10 * time.Second})
	h.failedStart("timeout", 1, "/bot<token>/getMe within 2s", h.args(e.emu.Endpoint(), metrics))
	h.failedStart("401", 1, "telegram rejected the bot token (401 Unauthorized)", h.args(otherBot.Endpoint(), metrics))
	h.failedStart("404", 1, "/bot<token>/getMe answered 404", h.args(strings.Replace(e.emu.Endpoint(), "/bot%s", "/api/bot%s", 1), metrics))
	h.failedStart("bad webhook URL", 2, "not \"ftp://x.example/<token>/<webhook-secret>\"", h.args(e.emu.Endpoint(), metrics,
		"--telegram-mode=webhook", "--webhook-secret="+canarySecret, "--webhook-url=ftp://x.example/"+canaryToken+"/"+canarySecret))
	e.emu.Fail(telegramemu.Fault{Method: "setWebhook", Count: 1, Status: http.StatusBadRequest})
	h.failedStart("setWebhook refused", 1, "telegram setWebhook: 400", h.args(e.emu.Endpoint(), metrics,
		"--telegram-mode=webhook", "--webhook-listen="+freeAddr(e.t), "--webhook-url=http://127.0.0.1:1/hook", "--webhook-secret="+canarySecret))
}

// pollingFaults: a running teleop meets 409, 5xx, dropped connections, 429
// and timeouts, while it answers a user and announces to a blocked chat.
func (h *leakHunt) pollingFaults() {
	e := h.e
	metrics := freeAddr(e.t)
	p := e.spawn("run", h.args(e.emu.Endpoint(), metrics)...)
	p.waitReady(e.t)
	alice := e.user(aliceID, "alice")

	// A getUpdates fault applies to the next poll, so a message ends the
	// poll in flight first; during runs while the fault lasts.
	pollFault := func(name string, f telegramemu.Fault, want string, during func()) {
		mark, before := len(p.log.String()), len(e.emu.Messages(aliceID))
		e.emu.Fail(f)
		e.emu.SendText(alice.chat, alice.from, "/help")
		if during != nil {
			during()
		}
		alice.waitNew(before, "I run your apps")
		h.waitLog(p, name, mark, want)
	}
	pollFault("409", telegramemu.Fault{Method: "getUpdates", Count: 2, Status: http.StatusConflict}, "getUpdates conflict", nil)
	pollFault("502", telegramemu.Fault{Method: "getUpdates", Count: 2, Status: http.StatusBadGateway}, "getUpdates: 502", nil)
	pollFault("dropped poll", telegramemu.Fault{Method: "getUpdates", Count: 3, Drop: true}, "/bot<token>/getUpdates", func() {
		h.waitProbe(p, "/readyz while polls fail", "/bot<token>/getUpdates")
	})

	sendFault := func(name string, f telegramemu.Fault, want string) {
		mark := len(p.log.String())
		e.emu.Fail(f)
		alice.say("/help", "I run your apps")
		h.waitLog(p, name, mark, want)
	}
	sendFault("429", telegramemu.Fault{Method: "sendMessage", Count: 1, Status: http.StatusTooManyRequests, RetryAfter: 1}, "Telegram flood control")
	sendFault("send timeout", telegramemu.Fault{Method: "sendMessage", Count: 1, Delay: 10 * time.Second}, "context deadline exceeded")
	sendFault("dropped send", telegramemu.Fault{Method: "sendMessage", Count: 1, Drop: true}, "/bot<token>/sendMessage")
	sendFault("send 500", telegramemu.Fault{Method: "sendMessage", Count: 1, Status: http.StatusInternalServerError}, "sendMessage: 500")

	// Telegram errors reach Events: a notice to a chat that blocked the bot.
	e.emu.MarkBlocked(blockedChat)
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "canary", Namespace: e.appsNS},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Notify: &v1alpha1.Notify{Chats: []string{fmt.Sprint(blockedChat)}}},
	}
	_, err := e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Create(ctx(e.t), app, metav1.CreateOptions{})
	require.NoError(e.t, err)
	e.eventually("an Event about the blocked chat", 60*time.Second, func() (bool, error) {
		events, err := e.kube.CoreV1().Events(e.appsNS).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range events.Items {
			if ev.Reason == announce.ReasonChatUnreachable {
				return true, nil
			}
		}
		return false, nil
	})
	h.keepProbes(p, metrics, "polling")
	p.stop()
	h.keep("output of teleop (polling faults)", p.log.String())
}

// webhookFaults: setWebhook fails on the network before it succeeds, with
// the token in the webhook URL's path as some deployments have it.
func (h *leakHunt) webhookFaults() {
	e := h.e
	metrics, listen := freeAddr(e.t), freeAddr(e.t)
	e.emu.Fail(telegramemu.Fault{Method: "setWebhook", Count: 2, Drop: true})
	p := e.spawn("run", h.args(e.emu.Endpoint(), metrics, "--telegram-mode=webhook", "--webhook-listen="+listen,
		"--webhook-url=http://"+listen+"/"+canaryToken+"/hook", "--webhook-secret="+canarySecret)...)
	h.waitLog(p, "dropped setWebhook", 0, "/bot<token>/setWebhook")
	p.waitReady(e.t)
	h.waitLog(p, "webhook URL", 0, "/<token>/hook")
	e.user(aliceID, "alice").say("/help", "I run your apps")
	h.keepProbes(p, metrics, "webhook")
	p.stop()
	h.keep("output of teleop (webhook faults)", p.log.String())
}

// waitLog waits until p's output after mark shows want, and fails if it does not.
func (h *leakHunt) waitLog(p *teleop, name string, mark int, want string) {
	h.e.t.Helper()
	h.e.eventually(name+": "+want+" in the log", 30*time.Second, func() (bool, error) {
		return strings.Contains(readable(p.log.String()[mark:]), want), nil
	})
}

// waitProbe polls /readyz until it shows want, keeping each body seen.
func (h *leakHunt) waitProbe(p *teleop, name, want string) {
	h.e.t.Helper()
	h.e.eventually(name+" shows "+want, 30*time.Second, func() (bool, error) {
		body := httpGet(h.e.t, "http://"+p.healthAddr+"/readyz")
		h.keep(name, body)
		return strings.Contains(body, want), nil
	})
}

// keepProbes keeps the probe bodies and the metrics of p.
func (h *leakHunt) keepProbes(p *teleop, metricsAddr, name string) {
	for _, path := range []string{"/healthz", "/readyz"} {
		h.keep(path+" ("+name+")", httpGet(h.e.t, "http://"+p.healthAddr+path))
	}
	metrics := httpGet(h.e.t, "http://"+metricsAddr+"/metrics")
	require.Contains(h.e.t, metrics, "teleop_telegram_messages_sent_total", "the metrics of a bot that ran")
	h.keep("/metrics ("+name+")", metrics)
}

func (h *leakHunt) keep(where, text string) {
	h.seen[fmt.Sprintf("%02d %s", h.runs, where)] = text
	h.runs++
}

// assertNoLeak searches everything kept, every object of the cluster and the
// chats for the canaries.
func (h *leakHunt) assertNoLeak() {
	t := h.e.t
	h.keepCluster()
	for _, chat := range []int64{aliceID, blockedChat} {
		msgs := h.e.emu.Messages(chat)
		b, err := json.Marshal(msgs)
		require.NoError(t, err)
		h.keep(fmt.Sprintf("messages of chat %d (%d)", chat, len(msgs)), string(b))
	}
	require.NotEmpty(t, h.e.emu.Messages(aliceID), "the chat was used")
	for where, text := range h.seen {
		for _, canary := range canaries {
			assert.Equal(t, 0, strings.Count(text, canary), "%s leaks %s:\n%s", where, canary, excerpt(text, canary))
		}
	}
}

// keepCluster keeps every object of every listable resource in all
// namespaces, as JSON.
func (h *leakHunt) keepCluster() {
	t := h.e.t
	cfg := h.e.cluster.RESTConfig()
	disco := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	lists, err := disco.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		require.NoError(t, err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	kinds := map[string]int{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		require.NoError(t, err)
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			objs, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx(t), metav1.ListOptions{})
			require.NoError(t, err, "list %s", r.Name)
			b, err := json.Marshal(objs)
			require.NoError(t, err)
			h.keep(fmt.Sprintf("%s.%s in the cluster", r.Name, gv.Group), string(b))
			kinds[r.Name] = len(objs.Items)
		}
	}
	for _, want := range []string{"teleapps", "events", "configmaps", "deployments", "leases"} {
		assert.Contains(t, kinds, want, "the cluster search covers %s", want)
	}
	assert.Positive(t, kinds["events"], "teleop wrote Events")
}

// readable undoes the JSON log format's escaping of < > and quotes, so one
// expectation reads both formats.
func readable(log string) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\"`, `"`).Replace(log)
}

// excerpt shows where canary occurs in text.
func excerpt(text, canary string) string {
	i := strings.Index(text, canary)
	if i < 0 {
		return ""
	}
	return text[max(0, i-200):min(len(text), i+len(canary)+200)]
}
