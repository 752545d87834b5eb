package operator_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/benchkit"
)

// TestScaleCostsOneDeploymentWriteAndOneStatusWrite counts, from watches on
// the real API server, what scaling a TeleApp writes besides the user's
// own patch: one Deployment update and one status write (Ready with the
// new replicas), nothing in between. The settle time is long here so that
// a slow plane cannot make the in-progress status due.
func TestScaleCostsOneDeploymentWriteAndOneStatusWrite(t *testing.T) {
	e := newEnvWith(t, operator.Options{Workers: 2, ProgressSettle: time.Minute})
	e.create(teleApp("web", "nginx:1.27", 1))
	e.waitStatus("web", v1alpha1.PhaseReady, 1)
	writes := e.countWrites()

	_, err := e.tele.TeleopV1alpha1().TeleApps(e.namespace).Patch(context.Background(), "web", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.waitStatus("web", v1alpha1.PhaseReady, 2)
	e.waitDeployment("web", func(d *appsv1.Deployment) bool { return d.Status.ReadyReplicas == 2 })
	time.Sleep(2 * time.Second) // room for a late write to show

	assert.Equal(t, map[string]int{"TeleApp spec": 1, "TeleApp status": 1, "Deployment spec": 1}, writes.Counts())
}

// countWrites counts the writes to the env's TeleApps and Deployments from now on.
func (e *env) countWrites() *benchkit.Writes {
	e.t.Helper()
	teleFactory := teleinformers.NewSharedInformerFactoryWithOptions(e.tele, 0, teleinformers.WithNamespace(e.namespace))
	kubeFactory := kubeinformers.NewSharedInformerFactoryWithOptions(e.kube, 0, kubeinformers.WithNamespace(e.namespace))
	apps := teleFactory.Teleop().V1alpha1().TeleApps().Informer()
	deployments := kubeFactory.Apps().V1().Deployments().Informer()
	benchkit.StartInformers(e.t, teleFactory, apps)
	benchkit.StartInformers(e.t, kubeFactory, deployments)
	w := benchkit.NewWrites()
	w.TeleApps(e.t, apps)
	w.Deployments(e.t, deployments)
	e.t.Cleanup(w.Stop)
	return w
}
