package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/telegramemu"
)

// The binary's /readyz fails while its API server is unreachable and passes
// again when it is back; a TeleApp created right after its return gets its
// Deployment within seconds, without restarting teleop.
func TestReadyzFollowsTheAPIServer(t *testing.T) {
	c := ownCluster(t)
	e := newEnvOn(t, c, telegramemu.Options{})
	p := e.start()

	require.NoError(t, c.StopAPIServer())
	e.eventually("/readyz to fail", 30*time.Second, func() (bool, error) {
		code, body := p.readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "API server unreachable"), nil
	})
	time.Sleep(5 * time.Second)
	require.NoError(t, c.StartAPIServer(ctx(t)))
	back := time.Now()
	e.eventually("/readyz to pass", 30*time.Second, func() (bool, error) {
		code, _ := p.readyz()
		return code == http.StatusOK, nil
	})
	t.Logf("/readyz passed %v after the API server was ready", time.Since(back).Round(time.Millisecond))

	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "after", Namespace: e.appsNS},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](1)},
	}
	_, err := e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Create(ctx(t), app, metav1.CreateOptions{})
	require.NoError(t, err)
	e.eventually("the new TeleApp's Deployment", 15*time.Second, func() (bool, error) { return e.deploymentReplicas("after") == 1, nil })
	t.Logf("the Deployment of a TeleApp created after the outage existed %v after the API server was ready", time.Since(back).Round(time.Millisecond))
}

// readyz returns the status code and body of /readyz (0 when unreachable).
func (p *teleop) readyz() (int, string) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(c, http.MethodGet, "http://"+p.healthAddr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
