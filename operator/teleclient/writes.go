package teleclient

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/scheme"
)

// The writes below are those whose answer teleop never reads: it reads
// TeleApps from its informer, which brings each write back, and decoding
// the TeleApp the API server answers with costs about as much CPU as
// sending the write. The typed clients always decode it. A clientset
// without a REST client, client-go's fake, gets the typed call.

const resource = "teleapps"

// UpdateStatus writes app's status through the status subresource.
func UpdateStatus(ctx context.Context, client versioned.Interface, app *v1alpha1.TeleApp, opts metav1.UpdateOptions) error {
	rc, ok := restClient(client)
	if !ok {
		_, err := client.TeleopV1alpha1().TeleApps(app.Namespace).UpdateStatus(ctx, app, opts)
		return err
	}
	return rc.Put().Namespace(app.Namespace).Resource(resource).Name(app.Name).SubResource("status").
		VersionedParams(&opts, scheme.ParameterCodec).Body(app).Do(ctx).Error()
}

// Patch patches the TeleApp namespace/name.
func Patch(ctx context.Context, client versioned.Interface, namespace, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions) error {
	rc, ok := restClient(client)
	if !ok {
		_, err := client.TeleopV1alpha1().TeleApps(namespace).Patch(ctx, name, pt, data, opts)
		return err
	}
	return rc.Patch(pt).Namespace(namespace).Resource(resource).Name(name).
		VersionedParams(&opts, scheme.ParameterCodec).Body(data).Do(ctx).Error()
}

func restClient(client versioned.Interface) (*rest.RESTClient, bool) {
	rc, ok := client.TeleopV1alpha1().RESTClient().(*rest.RESTClient)
	return rc, ok && rc != nil
}
