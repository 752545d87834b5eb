package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/test/cluster"
)

// TestOperatorRecoversFromAPIServerOutage stops kube-apiserver for 20 s
// while a client keeps creating and scaling TeleApps (retrying what fails, as
// a user would), then starts it again. The operator, never restarted,
// re-establishes its watches and reconciles everything written before,
// during the retries and after the outage.
func TestOperatorRecoversFromAPIServerOutage(t *testing.T) {
	outage := 20 * time.Second
	if soak() {
		outage = 2 * time.Minute
	}
	c := ownCluster(t, cluster.Options{})
	w := newWorld(t, c)
	stopOperator := runOperatorInProcess(t, c, w.ns)
	w.kubeletReadiness()

	ctx, cancel := context.WithTimeout(context.Background(), outage+5*time.Minute)
	defer cancel()
	writer := &writer{w: w, want: desired{}}
	for i := range 10 {
		writer.apply(ctx, appName(i), 1)
	}
	w.waitConverged(writer.snapshot(), time.Minute)

	stopWriting := make(chan struct{})
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		writer.run(ctx, stopWriting)
	}()
	time.Sleep(2 * time.Second)
	begin := time.Now()
	require.NoError(t, c.StopAPIServer())
	t.Logf("kube-apiserver stopped in %v, kept down for %v", time.Since(begin), outage)
	time.Sleep(outage)
	begin = time.Now()
	require.NoError(t, c.StartAPIServer(ctx))
	back := time.Now()
	t.Logf("kube-apiserver ready %v after its start", back.Sub(begin))
	time.Sleep(5 * time.Second) // writes resume on the restarted server
	close(stopWriting)
	<-writing

	want := writer.snapshot()
	w.waitConverged(want, 2*time.Minute)
	t.Logf("%d apps after %d writes (%d retried through the outage): converged %v after the API server was back",
		len(want), writer.writes, writer.retried, time.Since(back))
	require.Positive(t, writer.retried, "some writes met the outage")
	stopOperator()
}

// runOperatorInProcess runs teleop's operator for namespace until the
// returned stop is called (also at cleanup); it fails the test if Run
// returns before, because then the operator did not survive by itself.
func runOperatorInProcess(t testing.TB, c *cluster.Cluster, namespace string) (stop func()) {
	t.Helper()
	opts := operator.Options{Namespace: namespace}
	clients, err := operator.NewClients(c.RESTConfig(), opts)
	require.NoError(t, err)
	op, err := operator.New(clients, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			select {
			case err := <-done:
				t.Errorf("the operator stopped by itself: %v", err)
			default:
			}
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// writer creates and scales TeleApps like a persistent user: each write is
// retried until the API server takes it, and want records what was asked.
type writer struct {
	w       *world
	mu      sync.Mutex
	want    desired
	writes  int
	retried int
}

// run alternates creating a new app and scaling an existing one until stop.
func (wr *writer) run(ctx context.Context, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if i%2 == 0 {
			wr.apply(ctx, appName(1000+i), 1)
		} else {
			wr.apply(ctx, appName(i%10), 1+int32(i%4))
		}
	}
}

// apply makes app name have replicas: a create, or a merge patch of
// spec.replicas. Both are idempotent, so a write whose answer was lost in the
// outage can be repeated safely.
func (wr *writer) apply(ctx context.Context, name string, replicas int32) {
	wr.mu.Lock()
	_, exists := wr.want[name]
	wr.mu.Unlock()
	apps := wr.w.tele.TeleopV1alpha1().TeleApps(wr.w.ns)
	write := func() error {
		if !exists {
			_, err := apps.Create(ctx, teleApp(wr.w.ns, name, replicas), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		}
		patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
		_, err := apps.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	for attempt := 0; ; attempt++ {
		err := write()
		if err == nil {
			break
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			wr.w.t.Errorf("write %s=%d never went through: %v", name, replicas, err)
			return
		}
		if attempt == 0 {
			wr.mu.Lock()
			wr.retried++
			wr.mu.Unlock()
		}
		time.Sleep(250 * time.Millisecond)
	}
	wr.mu.Lock()
	defer wr.mu.Unlock()
	wr.want[name] = replicas
	wr.writes++
}

func (wr *writer) snapshot() desired {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	out := desired{}
	for name, replicas := range wr.want {
		out[name] = replicas
	}
	return out
}
