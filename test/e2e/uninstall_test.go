package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/telegramemu"
)

// createFollowedApps creates n TeleApps that chat 5001 follows and waits
// until teleop holds each with its finalizer.
func (e *env) createFollowedApps(n int) {
	e.t.Helper()
	for i := range n {
		app := &v1alpha1.TeleApp{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%02d", i)},
			Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27", Notify: &v1alpha1.Notify{Chats: []string{"5001"}}},
		}
		_, err := e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Create(ctx(e.t), app, metav1.CreateOptions{})
		require.NoError(e.t, err)
	}
	e.eventually("teleop's finalizer on every TeleApp", time.Minute, func() (bool, error) {
		list, err := e.tele.TeleopV1alpha1().TeleApps(e.appsNS).List(ctx(e.t), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, app := range list.Items {
			if !slices.Contains(app.Finalizers, announce.Finalizer) {
				return false, nil
			}
		}
		return len(list.Items) == n, nil
	})
}

// While Telegram fails, deleting a namespace of TeleApps with chats takes no
// longer than the deletion notice bound, plus the time Kubernetes itself
// needs; every notice given up is counted.
func TestNamespaceDeletionIsBoundedWhileTelegramFails(t *testing.T) {
	const (
		apps  = 20
		bound = 5 * time.Second
	)
	tests := []struct {
		name  string
		fault telegramemu.Fault
	}{
		{name: "Telegram answers 502", fault: telegramemu.Fault{Method: "sendMessage", Status: http.StatusBadGateway}},
		{name: "Telegram never answers", fault: telegramemu.Fault{Method: "sendMessage", Delay: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			metricsAddr := freeAddr(t)
			e.start("--metrics-addr", metricsAddr, "--deletion-notice-timeout", bound.String())
			e.createFollowedApps(apps)

			tt.fault.Until = time.Now().Add(10 * time.Minute)
			e.emu.Fail(tt.fault)
			deleted := time.Now()
			require.NoError(t, e.kube.CoreV1().Namespaces().Delete(ctx(t), e.appsNS, metav1.DeleteOptions{}))
			e.eventually("the namespace to be gone", bound+30*time.Second, func() (bool, error) {
				_, err := e.kube.CoreV1().Namespaces().Get(ctx(t), e.appsNS, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
			t.Logf("namespace of %d TeleApps gone %s after its deletion (bound %s)", apps, time.Since(deleted).Round(100*time.Millisecond), bound)
			metrics := httpGet(t, "http://"+metricsAddr+"/metrics")
			assert.Contains(t, metrics, fmt.Sprintf("teleop_deletion_notices_undelivered_total %d", apps))
		})
	}
}

// After teleop uninstall, with teleop stopped for good, a TeleApp that had
// chats deletes at once; a second uninstall finds nothing left to do.
func TestUninstallLeavesNoTeleAppStuck(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	e.createFollowedApps(2)
	p.stop()

	uninstall := func() string {
		out, err := exec.Command(teleopBinary, "uninstall", "--kubeconfig", e.cluster.Kubeconfig,
			"--namespace", e.systemNS, "--watch-namespace", e.appsNS).CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	out := uninstall()
	assert.Contains(t, out, "no teleop to stop")
	assert.Equal(t, 2, strings.Count(out, "released TeleApp"), out)
	assert.Contains(t, out, "from 2 of 2 TeleApps")
	assert.Contains(t, uninstall(), "from 0 of 2 TeleApps", "a second run changes nothing")

	require.NoError(t, e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Delete(ctx(t), "app-00", metav1.DeleteOptions{}))
	_, err := e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Get(ctx(t), "app-00", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "gone at once, not held by a finalizer: %v", err)
}
