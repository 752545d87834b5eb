package operator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeinformers "k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned/fake"
	teleinformers "github.com/teleop/teleop/operator/generated/informers/externalversions"
)

// fixture is a controller on fake clientsets whose informer caches are
// filled directly, as in k8s.io/sample-controller's tests.
type fixture struct {
	t          *testing.T
	kube       *k8sfake.Clientset
	tele       *fake.Clientset
	recorder   *record.FakeRecorder
	clock      *clocktesting.FakeClock
	controller *Controller
	indexers   map[string]cache.Indexer // by kind of object
}

// newFixture serves objects and uncached from the fake API server; only
// objects are in the informer caches (uncached ones lack teleop's label, or
// the cache is behind).
func newFixture(t *testing.T, app *v1alpha1.TeleApp, objects []runtime.Object, uncached ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{
		t:        t,
		kube:     k8sfake.NewClientset(append(append([]runtime.Object(nil), objects...), uncached...)...),
		tele:     fake.NewSimpleClientset(app),
		recorder: record.NewFakeRecorder(20),
		clock:    clocktesting.NewFakeClock(time.Now()),
	}
	teleFactory := teleinformers.NewSharedInformerFactory(f.tele, 0)
	kubeFactory := kubeinformers.NewSharedInformerFactory(f.kube, 0)
	apps := teleFactory.Teleop().V1alpha1().TeleApps()
	deployments := kubeFactory.Apps().V1().Deployments()
	services := kubeFactory.Core().V1().Services()
	pods := kubeFactory.Core().V1().Pods()
	controller, err := NewController(f.kube, f.tele, apps, deployments, services, pods, f.recorder, ControllerOptions{Clock: f.clock})
	require.NoError(t, err)
	f.controller = controller

	f.indexers = map[string]cache.Indexer{
		"TeleApp":    apps.Informer().GetIndexer(),
		"Deployment": deployments.Informer().GetIndexer(),
		"Service":    services.Informer().GetIndexer(),
		"Pod":        pods.Informer().GetIndexer(),
	}
	f.cache(append([]runtime.Object{app}, objects...)...)
	return f
}

// cache puts objects in the informer caches.
func (f *fixture) cache(objects ...runtime.Object) {
	for _, obj := range objects {
		kind := fmt.Sprintf("%T", obj)
		indexer, ok := f.indexers[kind[strings.LastIndex(kind, ".")+1:]]
		require.True(f.t, ok, "no informer for %T", obj)
		var entry any = obj // what the informers' transforms cache
		switch o := obj.(type) {
		case *appsv1.Deployment:
			entry = deploymentStateOf(o)
		case *corev1.Pod:
			entry = podStateOf(o)
		}
		require.NoError(f.t, indexer.Add(entry))
	}
}

// addApp adds another TeleApp to the API server and the cache, with objects
// in the cache.
func (f *fixture) addApp(app *v1alpha1.TeleApp, objects ...runtime.Object) {
	require.NoError(f.t, f.tele.Tracker().Add(app))
	f.cache(append([]runtime.Object{app}, objects...)...)
}

// failOn makes the API server answer verb on resource with err.
func (f *fixture) failOn(verb, resource string, err error) {
	f.kube.PrependReactor(verb, resource, func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, err })
}

func (f *fixture) sync(app *v1alpha1.TeleApp) error {
	return f.controller.sync(context.Background(), cache.ObjectName{Namespace: app.Namespace, Name: app.Name})
}

// writes lists the mutating API calls made, as "verb resource[/subresource]".
func (f *fixture) writes() []string {
	var out []string
	for _, a := range append(f.kube.Actions(), f.tele.Actions()...) {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" || a.GetVerb() == "get" {
			continue
		}
		r := a.GetResource().Resource
		if a.GetSubresource() != "" {
			r += "/" + a.GetSubresource()
		}
		out = append(out, a.GetVerb()+" "+r)
	}
	return out
}

func (f *fixture) storedStatus(app *v1alpha1.TeleApp) v1alpha1.TeleAppStatus {
	stored, err := f.tele.TeleopV1alpha1().TeleApps(app.Namespace).Get(context.Background(), app.Name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return stored.Status
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestSyncWrites(t *testing.T) {
	app := teleApp("web")
	withSvc := teleApp("web", withPort(8080))
	ready := ownedDeployment(app, rolledOut(3, 3, 3, 3))
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", fmt.Errorf("user cannot create"))
	quota := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", fmt.Errorf("exceeded quota: compute, requested: pods=1"))

	tests := []struct {
		name       string
		app        *v1alpha1.TeleApp
		objects    []runtime.Object
		uncached   []runtime.Object
		apiErrors  map[string]error // "verb resource" -> error
		wantWrites []string
		wantPhase  v1alpha1.Phase // stored after sync; "" when status is not written
		wantEvents []string
		wantErr    bool
	}{
		{
			name:       "new TeleApp gets its Deployment; Pending is not written at once",
			app:        app,
			wantWrites: []string{"create deployments"},
			wantEvents: []string{"Normal DeploymentCreated Created Deployment web"},
		},
		{
			name:       "new TeleApp with a port gets a Service too",
			app:        withSvc,
			wantWrites: []string{"create deployments", "create services"},
			wantEvents: []string{"Normal DeploymentCreated Created Deployment web", "Normal ServiceCreated Created Service web on port 8080"},
		},
		{
			name:    "in sync: nothing is written",
			app:     teleApp("web", withComputedStatus(ready)),
			objects: []runtime.Object{ready},
		},
		{
			name:       "Deployment rolled out: status turns Ready",
			app:        teleApp("web", withComputedStatus(ownedDeployment(app, rolledOut(3, 3, 1, 1)))),
			objects:    []runtime.Object{ready},
			wantWrites: []string{"update teleapps/status"},
			wantPhase:  v1alpha1.PhaseReady,
		},
		{
			name:       "replicas edited by hand are reverted",
			app:        teleApp("web", withComputedStatus(ready)),
			objects:    []runtime.Object{ownedDeployment(app, rolledOut(3, 3, 3, 3), withDeploymentReplicas(7))},
			wantWrites: []string{"patch deployments"},
			wantEvents: []string{"Normal DriftCorrected Reverted a change to Deployment web: replicas 3, image nginx:1.27"},
		},
		{
			name:       "spec replicas changed: the Deployment follows, no drift Event",
			app:        teleApp("web", withComputedStatus(ready), withReplicas(5), withGeneration(2)),
			objects:    []runtime.Object{ready},
			wantWrites: []string{"patch deployments"},
		},
		{
			name:       "a Deployment it does not own is not taken over",
			app:        app,
			objects:    []runtime.Object{foreignDeployment(app)},
			wantWrites: []string{"update teleapps/status"},
			wantPhase:  v1alpha1.PhaseFailed,
			wantEvents: []string{"Warning ErrResourceExists Deployment default/web already exists and is not managed by this TeleApp; teleop will not take it over (delete it or rename the TeleApp)"},
		},
		{
			name:       "a Deployment it does not own, outside the cache, is found and not taken over",
			app:        app,
			uncached:   []runtime.Object{foreignDeployment(app)},
			wantWrites: []string{"create deployments", "update teleapps/status"},
			wantPhase:  v1alpha1.PhaseFailed,
			wantEvents: []string{"Warning ErrResourceExists Deployment default/web already exists and is not managed by this TeleApp; teleop will not take it over (delete it or rename the TeleApp)"},
		},
		{
			name:       "its own Deployment outside the cache is used as it is",
			app:        teleApp("web", withComputedStatus(ownedDeployment(app, rolledOut(3, 3, 1, 1)))),
			uncached:   []runtime.Object{ready},
			wantWrites: []string{"create deployments", "update teleapps/status"},
			wantPhase:  v1alpha1.PhaseReady,
		},
		{
			name:       "its own Deployment outside the cache with its label removed by hand is corrected",
			app:        teleApp("web", withComputedStatus(ready)),
			uncached:   []runtime.Object{ownedDeployment(app, rolledOut(3, 3, 3, 3), func(d *appsv1.Deployment) { delete(d.Labels, v1alpha1.LabelManagedBy) })},
			wantWrites: []string{"create deployments", "patch deployments"},
			wantEvents: []string{"Normal DriftCorrected Reverted a change to Deployment web: replicas 3, image nginx:1.27"},
		},
		{
			name: "a failure already reported is not reported again",
			app: teleApp("web", withComputedStatus(nil), func(a *v1alpha1.TeleApp) {
				a.Status = computeStatus(a, nil, nil, notOwned("Deployment", a))
			}),
			objects: []runtime.Object{foreignDeployment(app)},
		},
		{
			name:       "port removed: the owned Service is deleted",
			app:        teleApp("web", withComputedStatus(ready)),
			objects:    []runtime.Object{ready, ownedService(withSvc)},
			wantWrites: []string{"delete services"},
			wantEvents: []string{"Normal ServiceDeleted Deleted Service web: the TeleApp has no port"},
		},
		{
			name: "port removed: a Service it does not own is left alone",
			app:  teleApp("web", withComputedStatus(ready)),
			objects: []runtime.Object{ready, func() *corev1.Service {
				s := ownedService(withSvc)
				s.OwnerReferences = nil
				return s
			}()},
		},
		{
			name:       "port changed: the Service follows",
			app:        teleApp("web", withPort(9090), withComputedStatus(ownedDeployment(teleApp("web", withPort(9090)), rolledOut(3, 3, 3, 3)))),
			objects:    []runtime.Object{ownedDeployment(teleApp("web", withPort(9090)), rolledOut(3, 3, 3, 3)), ownedService(withSvc)},
			wantWrites: []string{"update services"},
			wantEvents: []string{"Normal ServiceUpdated Updated Service web to port 9090"},
		},
		{
			name:       "forbidden: Failed, reported, not retried",
			app:        app,
			apiErrors:  map[string]error{"create deployments": forbidden},
			wantWrites: []string{"create deployments", "update teleapps/status"},
			wantPhase:  v1alpha1.PhaseFailed,
			wantEvents: []string{`Warning Forbidden cannot create Deployment default/web: deployments.apps "web" is forbidden: user cannot create`},
		},
		{
			name:       "quota exceeded: Failed, reported, not retried",
			app:        app,
			apiErrors:  map[string]error{"create deployments": quota},
			wantWrites: []string{"create deployments", "update teleapps/status"},
			wantPhase:  v1alpha1.PhaseFailed,
			wantEvents: []string{`Warning QuotaExceeded cannot create Deployment default/web: deployments.apps "web" is forbidden: exceeded quota: compute, requested: pods=1`},
		},
		{
			name:       "transient error: retried, status untouched",
			app:        app,
			apiErrors:  map[string]error{"create deployments": apierrors.NewInternalError(fmt.Errorf("etcd leader changed"))},
			wantWrites: []string{"create deployments"},
			wantErr:    true,
		},
		{
			name:       "pods in ImagePullBackOff: Degraded, reported once",
			app:        teleApp("web", withComputedStatus(ready)),
			objects:    []runtime.Object{ownedDeployment(app, rolledOut(3, 3, 2, 2)), appPod(app, "web-7c9f4-abcde", waiting("ImagePullBackOff"))},
			wantWrites: []string{"update teleapps/status"},
			wantPhase:  v1alpha1.PhaseDegraded,
			wantEvents: []string{"Warning Degraded ImagePullBackOff on web-7c9f4-abcde"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.app, tt.objects, tt.uncached...)
			for call, err := range tt.apiErrors {
				var verb, resource string
				_, _ = fmt.Sscan(call, &verb, &resource)
				f.failOn(verb, resource, err)
			}

			err := f.sync(tt.app)

			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantWrites, f.writes())
			if tt.wantPhase != "" {
				assert.Equal(t, tt.wantPhase, f.storedStatus(tt.app).Phase)
			}
			assert.Equal(t, tt.wantEvents, f.events())
		})
	}
}

func TestProgressIsWrittenOnceItLasts(t *testing.T) {
	app := teleApp("web")
	f := newFixture(t, app, []runtime.Object{ownedDeployment(app, rolledOut(3, 3, 1, 1))})

	require.NoError(t, f.sync(app))
	f.clock.Step(DefaultProgressSettle / 2)
	require.NoError(t, f.sync(app))
	assert.Empty(t, f.writes(), "Progressing for less than the settle time is not written")
	assert.Zero(t, f.controller.queue.Len())

	f.clock.Step(DefaultProgressSettle / 2)
	assert.Eventually(t, func() bool { return f.controller.queue.Len() == 1 }, 5*time.Second, 10*time.Millisecond,
		"a look is scheduled for when it has lasted")
	require.NoError(t, f.sync(app))
	assert.Equal(t, []string{"update teleapps/status"}, f.writes())
	assert.Equal(t, v1alpha1.PhaseProgressing, f.storedStatus(app).Phase)
	assert.Equal(t, "1/3 replicas ready, 3 updated", f.storedStatus(app).Message)
}

func TestProgressWaitsWhileABurstIsQueued(t *testing.T) {
	app := teleApp("web")
	f := newFixture(t, app, []runtime.Object{ownedDeployment(app, rolledOut(3, 3, 1, 1))})
	require.NoError(t, f.sync(app))
	f.clock.Step(DefaultProgressSettle)
	burst := make([]cache.ObjectName, DefaultWorkers+1)
	for i := range burst {
		burst[i] = cache.ObjectName{Namespace: testNamespace, Name: fmt.Sprintf("app-%d", i)}
		f.controller.queue.Add(burst[i])
	}

	require.NoError(t, f.sync(app))
	assert.Empty(t, f.writes(), "Progressing waits while more keys than workers are queued")

	for range burst {
		key, _ := f.controller.queue.Get()
		f.controller.queue.Done(key)
	}
	require.NoError(t, f.sync(app))
	assert.Equal(t, []string{"update teleapps/status"}, f.writes(), "and is written once they are taken")
	assert.Equal(t, v1alpha1.PhaseProgressing, f.storedStatus(app).Phase)
}

// TestProgressWritesHaveABudget: of many apps whose rollouts last, only
// progressWriteBurst get their in-progress status written at once; the
// others one per settle time, as the budget refills.
func TestProgressWritesHaveABudget(t *testing.T) {
	first := teleApp("app-0")
	f := newFixture(t, first, []runtime.Object{ownedDeployment(first, rolledOut(3, 3, 1, 1))})
	apps := []*v1alpha1.TeleApp{first}
	for i := 1; i < progressWriteBurst+5; i++ {
		app := teleApp(fmt.Sprintf("app-%d", i))
		f.addApp(app, ownedDeployment(app, rolledOut(3, 3, 1, 1)))
		apps = append(apps, app)
	}
	syncAll := func() {
		for _, app := range apps {
			require.NoError(t, f.sync(app))
		}
	}
	syncAll() // seen in progress: not written yet
	f.clock.Step(DefaultProgressSettle)

	syncAll()
	assert.Len(t, f.writes(), progressWriteBurst, "only the budget's worth is written")

	catchUp := func() { // the cache catches up with the writes
		for i, app := range apps {
			stored, err := f.tele.TeleopV1alpha1().TeleApps(app.Namespace).Get(context.Background(), app.Name, metav1.GetOptions{})
			require.NoError(t, err)
			apps[i] = stored
			f.cache(stored)
		}
		f.tele.ClearActions()
	}
	catchUp()
	f.clock.Step(DefaultProgressSettle)
	syncAll()
	assert.Len(t, f.writes(), 1, "one more per settle time")

	catchUp()
	f.clock.Step(DefaultProgressSettle * time.Duration(len(apps)-progressWriteBurst-1))
	syncAll()
	assert.Len(t, f.writes(), len(apps)-progressWriteBurst-1, "the others as the budget refills")
	for _, app := range apps {
		assert.Equal(t, v1alpha1.PhaseProgressing, f.storedStatus(app).Phase, app.Name)
	}
}

func TestFinalPhaseIsWrittenDespiteAQueuedBurst(t *testing.T) {
	app := teleApp("web")
	f := newFixture(t, app, []runtime.Object{ownedDeployment(app, rolledOut(3, 3, 3, 3))})
	for i := range DefaultWorkers + 1 {
		f.controller.queue.Add(cache.ObjectName{Namespace: testNamespace, Name: fmt.Sprintf("app-%d", i)})
	}

	require.NoError(t, f.sync(app))
	assert.Equal(t, []string{"update teleapps/status"}, f.writes())
	assert.Equal(t, v1alpha1.PhaseReady, f.storedStatus(app).Phase)
}

func TestSyncCreatedDeployment(t *testing.T) {
	app := teleApp("web", withPort(8080), withEnv("MODE", "prod"))
	f := newFixture(t, app, nil)

	require.NoError(t, f.sync(app))

	d, err := f.kube.AppsV1().Deployments(testNamespace).Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, metav1.IsControlledBy(d, app))
	assert.Equal(t, int32(3), *d.Spec.Replicas)
	assert.Equal(t, "nginx:1.27", d.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, []corev1.EnvVar{{Name: "MODE", Value: "prod"}}, d.Spec.Template.Spec.Containers[0].Env)
}

func TestSyncIgnoresMissingAndDeletingApps(t *testing.T) {
	deleting := teleApp("web", func(a *v1alpha1.TeleApp) {
		a.DeletionTimestamp = &metav1.Time{}
		a.Finalizers = []string{"teleop.io/announce"}
	})
	f := newFixture(t, deleting, nil)

	require.NoError(t, f.sync(deleting))
	require.NoError(t, f.controller.sync(context.Background(), cache.ObjectName{Namespace: testNamespace, Name: "gone"}))

	assert.Empty(t, f.writes())
}

func TestSyncMayChangeOnlyWithSpecStatusOrDeletion(t *testing.T) {
	app := teleApp("web", func(a *v1alpha1.TeleApp) { a.ResourceVersion, a.Generation = "1", 1 })
	tests := []struct {
		name   string
		change func(a *v1alpha1.TeleApp)
		want   bool
	}{
		{name: "periodic resync", change: func(*v1alpha1.TeleApp) {}, want: true},
		{name: "new spec", change: func(a *v1alpha1.TeleApp) { a.Spec.Image, a.Generation = "nginx:1.28", 2 }, want: true},
		{name: "deletion", change: func(a *v1alpha1.TeleApp) { a.DeletionTimestamp = ptr.To(metav1.Now()) }, want: true},
		{name: "status changed", change: func(a *v1alpha1.TeleApp) { a.Status.Phase = v1alpha1.PhaseReady }, want: true},
		{name: "finalizer and annotation added", change: func(a *v1alpha1.TeleApp) {
			a.Finalizers = []string{"teleop.io/announce"}
			a.Annotations = map[string]string{"teleop.io/announced": "{}"}
		}},
		{name: "label added", change: func(a *v1alpha1.TeleApp) { a.Labels = map[string]string{"team": "a"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			updated := app.DeepCopy()
			tt.change(updated)
			if tt.name != "periodic resync" {
				updated.ResourceVersion = "2"
			}
			assert.Equal(t, tt.want, syncMayChange(app, updated))
		})
	}
}

func TestEventHandlersEnqueueTheOwningApp(t *testing.T) {
	app := teleApp("web")
	other := teleApp("other")
	tests := []struct {
		name    string
		event   func(f *fixture)
		wantKey []string
	}{
		{
			name:    "owned Deployment changed",
			event:   func(f *fixture) { f.controller.ownedHandler().OnAdd(deploymentStateOf(ownedDeployment(app)), false) },
			wantKey: []string{"default/web"},
		},
		{
			name:    "foreign Deployment of an app's name deleted",
			event:   func(f *fixture) { f.controller.ownedHandler().OnDelete(deploymentStateOf(foreignDeployment(app))) },
			wantKey: []string{"default/web"},
		},
		{
			name: "Deployment owned by something else",
			event: func(f *fixture) {
				d := foreignDeployment(app)
				d.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(other, appsv1.SchemeGroupVersion.WithKind("Other"))}
				f.controller.ownedHandler().OnAdd(deploymentStateOf(d), false)
			},
		},
		{
			name: "unrelated Deployment without an app",
			event: func(f *fixture) {
				f.controller.ownedHandler().OnAdd(deploymentStateOf(foreignDeployment(other)), false)
			},
		},
		{
			name:  "pod of the app added: the Deployment's status tells",
			event: func(f *fixture) { f.controller.podHandler().OnAdd(podStateOf(appPod(app, "web-1")), false) },
		},
		{
			name: "pod of the app added stuck",
			event: func(f *fixture) {
				f.controller.podHandler().OnAdd(podStateOf(appPod(app, "web-1", waiting("ImagePullBackOff"))), false)
			},
			wantKey: []string{"default/web"},
		},
		{
			name: "stuck pod of the app deleted, from a tombstone",
			event: func(f *fixture) {
				f.controller.podHandler().OnDelete(cache.DeletedFinalStateUnknown{Obj: podStateOf(appPod(app, "web-1", waiting("ErrImagePull")))})
			},
			wantKey: []string{"default/web"},
		},
		{
			name: "pod of the app deleted",
			event: func(f *fixture) {
				f.controller.podHandler().OnDelete(podStateOf(appPod(app, "web-1")))
			},
		},
		{
			name: "pod of the app stuck pulling its image",
			event: func(f *fixture) {
				f.controller.podHandler().OnUpdate(podStateOf(appPod(app, "web-1", waiting("ContainerCreating"))), podStateOf(appPod(app, "web-1", waiting("ErrImagePull"))))
			},
			wantKey: []string{"default/web"},
		},
		{
			name: "pod of the app stuck another way",
			event: func(f *fixture) {
				f.controller.podHandler().OnUpdate(podStateOf(appPod(app, "web-1", waiting("ErrImagePull"))), podStateOf(appPod(app, "web-1", waiting("ImagePullBackOff"))))
			},
			wantKey: []string{"default/web"},
		},
		{
			name: "stuck pod of the app terminating",
			event: func(f *fixture) {
				f.controller.podHandler().OnUpdate(podStateOf(appPod(app, "web-1", waiting("CrashLoopBackOff"))), podStateOf(appPod(app, "web-1", waiting("CrashLoopBackOff"), terminating())))
			},
			wantKey: []string{"default/web"},
		},
		{
			name: "pod of the app terminating",
			event: func(f *fixture) {
				f.controller.podHandler().OnUpdate(podStateOf(appPod(app, "web-1")), podStateOf(appPod(app, "web-1", terminating())))
			},
		},
		{
			name: "stuck pod relabelled away from the app",
			event: func(f *fixture) {
				f.controller.podHandler().OnUpdate(podStateOf(appPod(app, "web-1", waiting("ErrImagePull"))), podStateOf(appPod(other, "web-1", waiting("ErrImagePull"))))
			},
			wantKey: []string{"default/web"},
		},
		{
			name: "pod of the app turned Running: the Deployment's status tells",
			event: func(f *fixture) {
				f.controller.podHandler().OnUpdate(podStateOf(appPod(app, "web-1", waiting("ContainerCreating"))), podStateOf(appPod(app, "web-1")))
			},
		},
		{
			name:  "pod of another app",
			event: func(f *fixture) { f.controller.podHandler().OnAdd(podStateOf(appPod(other, "other-1")), false) },
		},
		{
			name: "resync of an unchanged Deployment",
			event: func(f *fixture) {
				d := deploymentStateOf(ownedDeployment(app))
				f.controller.ownedHandler().OnUpdate(d, d)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, app, nil)

			tt.event(f)

			var keys []string
			for f.controller.queue.Len() > 0 {
				key, _ := f.controller.queue.Get()
				keys = append(keys, key.String())
				f.controller.queue.Done(key)
			}
			assert.Equal(t, tt.wantKey, keys)
		})
	}
}
