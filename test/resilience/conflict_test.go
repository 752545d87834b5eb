package resilience

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

// TestKubectlAndChatWritingAtOnceLoseNothing has kubectl change the image of
// a TeleApp while two chat users scale it by +1, all at the same moment: the
// chat side's read-modify-write meets conflicts and retries them, so every
// change lands, and the operator rolls out the final state.
func TestKubectlAndChatWritingAtOnceLoseNothing(t *testing.T) {
	rounds := 10
	if soak() {
		rounds = 40
	}
	c := cluster.Shared(t)
	w := newWorld(t, c)
	runOperatorInProcess(t, c, w.ns)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Create(ctx, teleApp(w.ns, "web", 1), metav1.CreateOptions{})
	require.NoError(t, err)

	conflicts := &statusCounter{status: http.StatusConflict}
	chat := chatClient(t, c, conflicts)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for user := range 2 {
		wg.Go(func() {
			<-start
			for i := range rounds {
				a := apps.Audit{
					Actor:     fmt.Sprintf("telegram:%d (@user%d)", 100+user, user),
					Command:   "/scale web +1",
					RequestID: fmt.Sprintf("telegram-update-%d-%d", user, i),
				}
				_, _, err := chat.Scale(ctx, w.ns, "web", apps.ReplicaChange{Delta: 1}, a)
				assert.NoError(t, err, "chat scale %s", a.RequestID)
			}
		})
	}
	wg.Go(func() {
		<-start
		for i := range rounds {
			_, err := c.Kubectl(ctx, "patch", "tapp/web", "-n", w.ns, "--type=merge", "-p", fmt.Sprintf(`{"spec":{"image":"nginx:1.%d"}}`, i))
			assert.NoError(t, err)
		}
	})
	close(start)
	wg.Wait()
	t.Logf("%d rounds of kubectl and two chat users: the chat side met %d conflicts", rounds, conflicts.count.Load())

	want := int32(1 + 2*rounds)
	w.waitConverged(desired{"web": want}, 2*time.Minute)
	app, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	lastImage := fmt.Sprintf("nginx:1.%d", rounds-1)
	assert.Equal(t, lastImage, app.Spec.Image, "kubectl's last change kept")
	d, err := w.kube.AppsV1().Deployments(w.ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, lastImage, d.Spec.Template.Spec.Containers[0].Image, "rolled out")
}

// chatClient is the chat side's door to TeleApps, as the bot uses it, over
// a transport that counts the answers with one HTTP status.
func chatClient(t *testing.T, c *cluster.Cluster, counter *statusCounter) *apps.Client {
	cfg := c.RESTConfig()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	tele, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	recorder, stop := apps.NewEventRecorder(kube, "teleop-resilience-test")
	t.Cleanup(stop)
	return apps.New(tele, recorder)
}

// statusCounter counts responses with status.
type statusCounter struct {
	status int
	count  atomic.Int64
	next   http.RoundTripper
}

func (s *statusCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.StatusCode == s.status {
		s.count.Add(1)
	}
	return resp, err
}

var _ http.RoundTripper = (*statusCounter)(nil)
