package bench

import (
	"testing"

	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

// watchDeployments and watchTeleApps return informers on a namespace's
// objects for benchkit.Count, so that timing costs the API server nothing
// beyond one watch per kind.
func watchDeployments(b *testing.B, c *cluster.Cluster, namespace string) cache.SharedIndexInformer {
	factory := kubeinformers.NewSharedInformerFactoryWithOptions(kubernetes.NewForConfigOrDie(c.RESTConfig()), 0, kubeinformers.WithNamespace(namespace))
	informer := factory.Apps().V1().Deployments().Informer()
	benchkit.StartInformers(b, factory, informer)
	return informer
}

func watchTeleApps(b *testing.B, c *cluster.Cluster, namespace string) cache.SharedIndexInformer {
	factory := teleinformers.NewSharedInformerFactoryWithOptions(versioned.NewForConfigOrDie(c.RESTConfig()), 0, teleinformers.WithNamespace(namespace))
	informer := factory.Teleop().V1alpha1().TeleApps().Informer()
	benchkit.StartInformers(b, factory, informer)
	return informer
}
