package operator

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/cluster"
)

// A correction computed from a cached Deployment that was since deleted and
// created again by someone else is refused by the API server: the patch
// names the UID it was made for.
func TestDeploymentPatchRefusesANamesake(t *testing.T) {
	c := cluster.Shared(t)
	kube, err := kubernetes.NewForConfig(c.RESTConfig())
	require.NoError(t, err)
	ctx := context.Background()
	app := teleApp("web")
	app.Namespace = c.Namespace(t, "operator-patch-")
	deployments := kube.AppsV1().Deployments(app.Namespace)

	created, err := deployments.Create(ctx, ownerlessDeployment(app), metav1.CreateOptions{})
	require.NoError(t, err)
	cached := deploymentStateOf(created)
	require.NoError(t, deployments.Delete(ctx, "web", metav1.DeleteOptions{}))
	namesake, err := deployments.Create(ctx, ownerlessDeployment(app), metav1.CreateOptions{})
	require.NoError(t, err)

	scaled := app.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](5)
	current := cached.deployment()
	patch, err := deploymentPatch(current, reconcileDeployment(scaled, current))
	require.NoError(t, err)
	_, err = deployments.Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "refused as a change of the UID: %v", err)
	assert.True(t, replacedSinceCached(err), "told apart from an invalid Deployment: %v", err)

	got, err := deployments.Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, *namesake.Spec.Replicas, *got.Spec.Replicas, "the namesake is untouched")
}

// ownerlessDeployment is the Deployment app asks for without its controller
// reference: app exists only in the test, and the garbage collector deletes
// whatever names an owner that the API server does not have.
func ownerlessDeployment(app *v1alpha1.TeleApp) *appsv1.Deployment {
	d := newDeployment(app)
	d.OwnerReferences = nil
	return d
}
