package resilience

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

const image = "nginx:1.27"

// world is one test's namespace on a control plane, with admin clients.
type world struct {
	t    testing.TB
	c    *cluster.Cluster
	kube kubernetes.Interface
	tele versioned.Interface
	ns   string
}

// newWorld makes a fresh namespace on c, removed when the test ends.
func newWorld(t testing.TB, c *cluster.Cluster) *world {
	t.Helper()
	w := newWorldFor(t, c, c.RESTConfig())
	w.ns = c.Namespace(t, "resilience-")
	return w
}

// newWorldFor is a world without a namespace yet, with clients of cfg.
func newWorldFor(t testing.TB, c *cluster.Cluster, cfg *rest.Config) *world {
	t.Helper()
	kube, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	tele, err := versioned.NewForConfig(cfg)
	require.NoError(t, err)
	return &world{t: t, c: c, kube: kube, tele: tele}
}

// ownCluster starts a private control plane, for tests that stop its API
// server or load it heavily; the shared one is never stopped.
func ownCluster(t testing.TB, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	cluster.Shared(t) // skips loudly under TELEOP_SKIP_CLUSTER=1, like every cluster test
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, opts)
	require.NoError(t, err, "start a private control plane")
	t.Cleanup(c.Stop)
	require.NoError(t, cluster.InstallCRDs(ctx, c.RESTConfig(), cluster.RepoRoot()+"/deploy/crds"))
	return c
}

// teleApp builds a TeleApp in namespace.
func teleApp(namespace, name string, replicas int32, chats ...string) *v1alpha1.TeleApp {
	app := &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       v1alpha1.TeleAppSpec{Image: image, Replicas: ptr.To(replicas)},
	}
	if len(chats) > 0 {
		app.Spec.Notify = &v1alpha1.Notify{Chats: chats}
	}
	return app
}

func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

// desired is what a namespace should converge to: app name → replicas.
type desired map[string]int32

// convergenceProblem returns "" when the namespace holds exactly the apps of
// want, each with its own Deployment of the wanted replicas and a status
// that is Ready with every replica ready for the current generation;
// otherwise it describes the first few differences.
func (w *world) convergenceProblem(ctx context.Context, want desired) string {
	apps, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("list TeleApps: %v", err)
	}
	deployments, err := w.kube.AppsV1().Deployments(w.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("list Deployments: %v", err)
	}
	var problems []string
	if len(apps.Items) != len(want) {
		problems = append(problems, fmt.Sprintf("%d TeleApps, want %d", len(apps.Items), len(want)))
	}
	if len(deployments.Items) != len(want) {
		problems = append(problems, fmt.Sprintf("%d Deployments, want %d", len(deployments.Items), len(want)))
	}
	byName := map[string]int{}
	for _, d := range deployments.Items {
		byName[d.Name]++
		replicas, ok := want[d.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("Deployment %s belongs to no wanted app", d.Name))
		case ptr.Deref(d.Spec.Replicas, -1) != replicas:
			problems = append(problems, fmt.Sprintf("Deployment %s has %d replicas, want %d", d.Name, ptr.Deref(d.Spec.Replicas, -1), replicas))
		case len(d.OwnerReferences) != 1 || d.OwnerReferences[0].Name != d.Name:
			problems = append(problems, fmt.Sprintf("Deployment %s owned by %v", d.Name, d.OwnerReferences))
		}
	}
	for _, app := range apps.Items {
		s := app.Status
		replicas := want[app.Name]
		switch {
		case byName[app.Name] != 1:
			problems = append(problems, fmt.Sprintf("%s has %d Deployments", app.Name, byName[app.Name]))
		case ptr.Deref(app.Spec.Replicas, -1) != replicas:
			problems = append(problems, fmt.Sprintf("%s spec.replicas %d, want %d", app.Name, ptr.Deref(app.Spec.Replicas, -1), replicas))
		case s.ObservedGeneration != app.Generation || s.Phase != v1alpha1.PhaseReady || s.ReadyReplicas != replicas:
			problems = append(problems, fmt.Sprintf("%s is %s %d/%d at generation %d of %d", app.Name, s.Phase, s.ReadyReplicas, replicas, s.ObservedGeneration, app.Generation))
		}
	}
	if len(problems) == 0 {
		return ""
	}
	sort.Strings(problems)
	return fmt.Sprintf("%d problems, e.g. %s", len(problems), strings.Join(problems[:min(5, len(problems))], "; "))
}

// waitConverged waits until the namespace holds what want says and returns
// how long that took.
func (w *world) waitConverged(want desired, timeout time.Duration) time.Duration {
	w.t.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	problem := "not checked yet"
	lastReport := begin
	for {
		if problem = w.convergenceProblem(ctx, want); problem == "" {
			return time.Since(begin)
		}
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			w.t.Logf("after %v still waiting: %s (pods: %s)", time.Since(begin).Round(time.Second), problem, w.podSummary())
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("namespace %s did not converge within %v: %s (pods: %s)", w.ns, timeout, problem, w.podSummary())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// podSummary counts the namespace's pods by phase and readiness, to tell a
// failure of teleop from one of the simulated kubelets.
func (w *world) podSummary() string {
	pods, err := w.kube.CoreV1().Pods(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("list pods: %v", err)
	}
	counts := map[string]int{}
	for _, p := range pods.Items {
		ready := "unready"
		if podReady(&p) {
			ready = "ready"
		}
		scheduled := "unscheduled"
		if p.Spec.NodeName != "" {
			scheduled = "on a node"
		}
		counts[fmt.Sprintf("%s %s %s", p.Status.Phase, ready, scheduled)]++
	}
	nodes, err := w.kube.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("%v; list nodes: %v", counts, err)
	}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				counts[fmt.Sprintf("node Ready=%s (%s)", c.Status, c.Reason)]++
			}
		}
	}
	var unready []string
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue && len(unready) < 2 {
				unready = append(unready, fmt.Sprintf("%s: %s %s at %s", p.Name, c.Reason, c.Message, c.LastTransitionTime))
			}
		}
	}
	return fmt.Sprintf("%v, e.g. %v", counts, unready)
}

// createApps creates the TeleApps of want from workers goroutines and
// returns the first error of each app that failed for good.
func (w *world) createApps(ctx context.Context, want desired, workers int) error {
	names := make(chan string)
	errs := make(chan error, len(want))
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for name := range names {
				if _, err := w.tele.TeleopV1alpha1().TeleApps(w.ns).Create(ctx, teleApp(w.ns, name, want[name]), metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("create %s: %w", name, err)
				}
			}
		}()
	}
	for name := range want {
		names <- name
	}
	close(names)
	for range workers {
		<-done
	}
	close(errs)
	return <-errs
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
