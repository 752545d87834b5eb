package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
)

const (
	// envKopfSource is where Kopf's source is; ../shared/peers/kopf-1.44.6
	// beside the repository when unset.
	envKopfSource = "TELEOP_KOPF_SOURCE"
	// kopfWriters is how many clients write the burst, each its own.
	kopfWriters = 16
	// debianPython is the interpreter Debian's python3 packages are for
	// (a python3 earlier in PATH, pyenv's say, would not see them).
	debianPython = "/usr/bin/python3"
	// idleTimeout bounds the wait for an operator to finish a phase's work.
	idleTimeout = 5 * time.Minute
)

// contender is an operator doing teleop's core job in its own process.
type contender struct {
	name  string
	start func(b *testing.B, c *cluster.Cluster, namespace string) *benchkit.Process
}

// kopfPhase is what one contender measured in one phase.
type kopfPhase struct {
	sent, right time.Duration
	cpu         time.Duration // from the first request until the process idles
	peak        benchkit.Memory
}

// BenchmarkKopf runs once (use -benchtime=1x): Kopf (test/bench/kopf,
// a small operator of ours on Kopf 1.44.6) and then teleop, each a fresh
// process in a fresh namespace on one private control plane, on the same
// burst: 16 clients create N TeleApps at 1 replica, then patch all to 2.
// hack/kopf-bench.sh installs what Kopf needs and runs it.
func BenchmarkKopf(b *testing.B) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		b.Skip("SKIPPED: the Kopf benchmark needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	source := kopfSource(b)
	n := positiveEnv(b, envApps, 1000)
	c := startCluster(b, n)
	binary := benchkit.BuildTeleop(b)
	contenders := []contender{
		{name: "kopf", start: func(b *testing.B, c *cluster.Cluster, _ string) *benchkit.Process {
			cmd := exec.Command(debianPython, filepath.Join(cluster.RepoRoot(), "test", "bench", "kopf", "operator.py"))
			cmd.Env = append(os.Environ(), "PYTHONPATH="+source, "KUBECONFIG="+c.Kubeconfig)
			return benchkit.StartProcess(b, cmd)
		}},
		{name: "teleop", start: func(b *testing.B, c *cluster.Cluster, namespace string) *benchkit.Process {
			// The same job as the Kopf operator: `teleop run` without a
			// token is the operator only.
			return benchkit.StartTeleop(b, binary, "--kubeconfig", c.Kubeconfig, "--namespace", namespace,
				"--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0")
		}},
	}
	results := map[string][2]kopfPhase{}
	for _, k := range contenders {
		namespace := "vs-" + k.name
		results[k.name] = runContender(b, c, k, namespace, n)
		deleteNamespaces(b, c, namespace, namespace+"-probe")
	}
	reportKopf(b, n, results)
}

// kopfSource returns a copy of Kopf's source that Python can import, and
// fails with what to run when it cannot. The copy has the version module
// that setuptools-scm writes on install (a stub, as the peers' README says),
// which a source tree without an install lacks.
func kopfSource(b *testing.B) string {
	source := os.Getenv(envKopfSource)
	if source == "" {
		source = filepath.Join(cluster.RepoRoot(), "..", "shared", "peers", "kopf-1.44.6")
	}
	tree := b.TempDir()
	if err := os.CopyFS(tree, os.DirFS(source)); err != nil {
		b.Fatalf("copy Kopf's source from %s (set %s to where it is): %v", source, envKopfSource, err)
	}
	versions := filepath.Join(tree, "kopf", "_cogs", "helpers", "versions.py")
	if _, err := os.Stat(versions); os.IsNotExist(err) {
		stub := "__version__ = version = 'source'\n__version_tuple__ = version_tuple = ()\n__commit_id__ = commit_id = None\n"
		if err := os.WriteFile(versions, []byte(stub), 0o644); err != nil {
			b.Fatalf("write Kopf's version stub: %v", err)
		}
	}
	check := exec.Command(debianPython, "-c", "import kopf, kubernetes, aiohttp")
	check.Env = append(os.Environ(), "PYTHONPATH="+tree)
	if out, err := check.CombinedOutput(); err != nil {
		b.Fatalf("%s cannot import Kopf from %s (run hack/kopf-bench.sh, which installs Debian's packages): %v\n%s", debianPython, source, err, out)
	}
	return tree
}

// runContender starts the contender, waits until it works (a probe
// TeleApp gets its Deployment), then times the create and the patch bursts.
func runContender(b *testing.B, c *cluster.Cluster, k contender, namespace string, n int) [2]kopfPhase {
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(c.RESTConfig())
	createNamespace(b, admin, namespace)
	createNamespace(b, admin, namespace+"-probe")
	w := watch(b, c, namespace)
	defer w.writes.Stop()
	proc := k.start(b, c, namespace)
	defer proc.Kill()
	waitWorking(b, c, namespace+"-probe", proc)

	writers := make([]versioned.Interface, kopfWriters)
	for i := range writers {
		writers[i] = versioned.NewForConfigOrDie(c.RESTConfig())
	}
	create := func(i int) error {
		_, err := writers[i%kopfWriters].TeleopV1alpha1().TeleApps(namespace).Create(ctx, teleApp(appName(i), initialReplicas), metav1.CreateOptions{})
		return err
	}
	patch := func(i int) error {
		_, err := writers[i%kopfWriters].TeleopV1alpha1().TeleApps(namespace).Patch(ctx, appName(i), types.MergePatchType, replicasPatch(scaledReplicas), metav1.PatchOptions{})
		return err
	}
	return [2]kopfPhase{
		kopfBurst(b, proc, n, create, w.deploymentsWith(b, n, initialReplicas)),
		kopfBurst(b, proc, n, patch, w.deploymentsWith(b, n, scaledReplicas)),
	}
}

// waitWorking creates a TeleApp in namespace and waits for its Deployment:
// then the contender watches and writes.
func waitWorking(b *testing.B, c *cluster.Cluster, namespace string, proc *benchkit.Process) {
	ctx := context.Background()
	_, err := versioned.NewForConfigOrDie(c.RESTConfig()).TeleopV1alpha1().TeleApps(namespace).Create(ctx, teleApp("probe", 1), metav1.CreateOptions{})
	if err != nil {
		b.Fatalf("create probe TeleApp: %v", err)
	}
	kube := kubernetes.NewForConfigOrDie(c.RESTConfig())
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kube.AppsV1().Deployments(namespace).Get(ctx, "probe", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		b.Fatalf("the operator did not create the probe's Deployment: %v; log:\n%s", err, proc.Tail())
	}
}

// kopfBurst sends the burst and waits until every Deployment is right and
// the process has gone idle, for its CPU time.
func kopfBurst(b *testing.B, proc *benchkit.Process, n int, request func(int) error, right *benchkit.Counter) kopfPhase {
	cpu := proc.CPU(b)
	start := time.Now()
	benchkit.BurstWith(b, kopfWriters, n, request)
	p := kopfPhase{sent: time.Since(start)}
	p.right = right.Wait(b, "every Deployment right", start, phaseTimeout)
	p.cpu = waitIdle(b, proc) - cpu
	p.peak = proc.Memory(b)
	return p
}

// waitIdle waits until the process used at most two clock ticks of CPU in
// each of two half seconds running, and returns its CPU time then.
func waitIdle(b *testing.B, proc *benchkit.Process) time.Duration {
	const quiet = 20 * time.Millisecond
	last, calm := proc.CPU(b), 0
	for deadline := time.Now().Add(idleTimeout); calm < 2; {
		if time.Now().After(deadline) {
			b.Fatalf("the process did not go idle within %v", idleTimeout)
		}
		time.Sleep(500 * time.Millisecond)
		now := proc.CPU(b)
		if now-last <= quiet {
			calm++
		} else {
			calm = 0
		}
		last = now
	}
	return last
}

func reportKopf(b *testing.B, n int, results map[string][2]kopfPhase) {
	kopf, teleop := results["kopf"], results["teleop"]
	b.Logf("| N | phase | Kopf: sent / all right | teleop: sent / all right | Kopf CPU | teleop CPU | Kopf peak RSS | teleop peak RSS |")
	for i, phase := range []string{"create", "patch"} {
		k, t := kopf[i], teleop[i]
		b.Logf("| %d | %s | %.1f / %.1f s | %.1f / %.1f s | %.1f s | %.1f s | %.0f MiB | %.0f MiB |", n, phase,
			k.sent.Seconds(), k.right.Seconds(), t.sent.Seconds(), t.right.Seconds(),
			k.cpu.Seconds(), t.cpu.Seconds(), float64(k.peak.PeakRSS)/mib, float64(t.peak.PeakRSS)/mib)
		b.ReportMetric((t.right - t.sent).Seconds(), "teleop-"+phase+"-behind-s")
		b.ReportMetric((k.right - k.sent).Seconds(), "kopf-"+phase+"-behind-s")
		b.ReportMetric(t.cpu.Seconds()/k.cpu.Seconds(), "cpu-ratio-"+phase)
	}
	b.ReportMetric(float64(teleop[1].peak.PeakRSS)/float64(kopf[1].peak.PeakRSS), "peak-RSS-ratio")
	b.Logf("%s", fmt.Sprintf("behind the last request: Kopf %.1f s / %.1f s, teleop %.1f s / %.1f s (create / patch)",
		(kopf[0].right-kopf[0].sent).Seconds(), (kopf[1].right-kopf[1].sent).Seconds(),
		(teleop[0].right-teleop[0].sent).Seconds(), (teleop[1].right-teleop[1].sent).Seconds()))
}
