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
	name string
	// start runs the contender, with its own state in namespace; one that
	// serves Go's profiles takes a profiler (a no-op unless
	// TELEOP_BENCH_PROFILES is set).
	start    func(b *testing.B, c *cluster.Cluster, namespace string, profiles *profiler) *benchkit.Process
	profiled bool
}

// kopfPhase is what one contender measured in one phase.
type kopfPhase struct {
	sent, right time.Duration
	cpu         time.Duration // from the first request until the process idles
	peak        benchkit.Memory
}

// BenchmarkKopf runs once (use -benchtime=1x): TELEOP_BENCH_PAIRS pairs of
// Kopf (test/bench/kopf, a small operator of ours on Kopf 1.44.6) and
// teleop, interleaved (Kopf, teleop, Kopf, ...), each a fresh process in a
// fresh namespace on one private control plane, on the same burst: 16
// clients create N TeleApps at 1 replica, then patch all to 2. It reports
// each run, and the median and spread of each comparison.
// hack/kopf-bench.sh installs what Kopf needs and runs it.
func BenchmarkKopf(b *testing.B) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		b.Skip("SKIPPED: the Kopf benchmark needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	source := kopfSource(b)
	n, pairs := positiveEnv(b, envApps, 1000), positiveEnv(b, envPairs, 3)
	c := startCluster(b, n)
	binary := benchkit.BuildTeleop(b)
	kopf := contender{name: "kopf", start: func(b *testing.B, c *cluster.Cluster, _ string, _ *profiler) *benchkit.Process {
		cmd := exec.Command(debianPython, filepath.Join(cluster.RepoRoot(), "test", "bench", "kopf", "operator.py"))
		cmd.Env = append(os.Environ(), "PYTHONPATH="+source, "KUBECONFIG="+c.Kubeconfig)
		return benchkit.StartProcess(b, cmd)
	}}
	teleop := contender{name: "teleop", profiled: true, start: func(b *testing.B, c *cluster.Cluster, namespace string, profiles *profiler) *benchkit.Process {
		// `teleop run` as shipped; the Kopf operator has no chat to tell.
		return benchkit.StartTeleop(b, binary, append(shippedArgs(b, c, namespace), "--pprof-addr", profiles.addr)...)
	}}
	var kopfRuns, teleopRuns [][2]kopfPhase
	for i := range pairs {
		kopfRuns = append(kopfRuns, runContender(b, c, kopf, fmt.Sprintf("vs-kopf-%d", i), n))
		teleopRuns = append(teleopRuns, runContender(b, c, teleop, fmt.Sprintf("vs-teleop-%d", i), n))
	}
	reportKopf(b, n, kopfRuns, teleopRuns)
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

// runContender starts the contender in namespace, waits until it works (a
// probe TeleApp gets its Deployment), times the create and the patch
// bursts, stops it and deletes its namespaces.
func runContender(b *testing.B, c *cluster.Cluster, k contender, namespace string, n int) [2]kopfPhase {
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(c.RESTConfig())
	createNamespace(b, admin, namespace)
	createNamespace(b, admin, namespace+"-probe")
	defer deleteNamespaces(b, c, namespace, namespace+"-probe")
	w := watch(b, c, namespace)
	defer w.writes.Stop()
	profiles := &profiler{}
	if k.profiled {
		profiles = newProfiler(b, namespace, c)
	}
	proc := k.start(b, c, namespace, profiles)
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
		kopfBurst(b, proc, profiles, "create", n, create, w.deploymentsWith(b, n, initialReplicas)),
		kopfBurst(b, proc, profiles, "patch", n, patch, w.deploymentsWith(b, n, scaledReplicas)),
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
// the process has gone idle, for its CPU time, profiling the phase.
func kopfBurst(b *testing.B, proc *benchkit.Process, profiles *profiler, phase string, n int, request func(int) error, right *benchkit.Counter) kopfPhase {
	cpu := proc.CPU(b)
	profiles.cpu(b, phase)
	defer profiles.wait()
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

// behind is how long after the last request every Deployment was right.
func (p kopfPhase) behind() float64 { return (p.right - p.sent).Seconds() }

func reportKopf(b *testing.B, n int, kopf, teleop [][2]kopfPhase) {
	b.Logf("| N | pair | phase | Kopf: sent / all right | teleop: sent / all right | Kopf CPU | teleop CPU | Kopf peak RSS | teleop peak RSS |")
	for i := range kopf {
		for p, phase := range kopfPhases {
			k, t := kopf[i][p], teleop[i][p]
			b.Logf("| %d | %d | %s | %.1f / %.1f s | %.1f / %.1f s | %.1f s | %.1f s | %.0f MiB | %.0f MiB |", n, i, phase,
				k.sent.Seconds(), k.right.Seconds(), t.sent.Seconds(), t.right.Seconds(),
				k.cpu.Seconds(), t.cpu.Seconds(), float64(k.peak.PeakRSS)/mib, float64(t.peak.PeakRSS)/mib)
		}
	}
	for p, phase := range kopfPhases {
		var kopfBehind, teleopBehind, cpu []float64
		for i := range kopf {
			kopfBehind = append(kopfBehind, kopf[i][p].behind())
			teleopBehind = append(teleopBehind, teleop[i][p].behind())
			cpu = append(cpu, teleop[i][p].cpu.Seconds()/kopf[i][p].cpu.Seconds())
		}
		b.Logf("%s, median (spread) of %d pairs: every Deployment right after the last request: Kopf %v s, teleop %v s; teleop's CPU %v × Kopf's",
			phase, len(kopf), spreadOf(kopfBehind), spreadOf(teleopBehind), spreadOf(cpu))
		b.ReportMetric(spreadOf(teleopBehind).median, "teleop-"+phase+"-behind-s")
		b.ReportMetric(spreadOf(kopfBehind).median, "kopf-"+phase+"-behind-s")
		b.ReportMetric(spreadOf(cpu).median, "cpu-ratio-"+phase)
	}
	// VmHWM only grows: the patch phase's is the process's peak.
	var kopfRSS, teleopRSS, ratio []float64
	for i := range kopf {
		k, t := float64(kopf[i][1].peak.PeakRSS), float64(teleop[i][1].peak.PeakRSS)
		kopfRSS, teleopRSS, ratio = append(kopfRSS, k/mib), append(teleopRSS, t/mib), append(ratio, t/k)
	}
	b.Logf("peak RSS, median (spread): Kopf %v MiB, teleop %v MiB, teleop %v × Kopf's", spreadOf(kopfRSS), spreadOf(teleopRSS), spreadOf(ratio))
	b.ReportMetric(spreadOf(ratio).median, "peak-RSS-ratio")
}

var kopfPhases = [2]string{"create", "patch"}
