package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/benchkit"
	"github.com/teleop/teleop/test/cluster"
	"github.com/teleop/teleop/test/telegramemu"
)

// envRestarts overrides how many restarts BenchmarkRestart measures (3).
const envRestarts = "TELEOP_BENCH_RESTARTS"

// teleopUnderTest is `teleop run` as shipped for one namespace of apps (the
// bot on the emulator, leader election, the announcer telling notifyChats,
// the conversation state in the cluster), with what sees its writes.
type teleopUnderTest struct {
	binary    string
	args      []string
	namespace string
	kube      kubernetes.Interface
	tele      versioned.Interface
	w         *watched
	profiles  *profiler
}

// newTeleopUnderTest creates the namespace of the apps and teleop's own, and
// starts watching the first; the caller stops t.w.writes.
func newTeleopUnderTest(b *testing.B, c *cluster.Cluster, budget benchkit.Budget, binary, namespace string) *teleopUnderTest {
	cfg := budget.Apply(c.RESTConfig())
	kube := kubernetes.NewForConfigOrDie(cfg)
	createNamespace(b, kube, namespace)
	createNamespace(b, kube, namespace+"-system")
	profiles := newProfiler(b, namespace, c)
	return &teleopUnderTest{
		binary:    binary,
		namespace: namespace,
		kube:      kube,
		tele:      versioned.NewForConfigOrDie(cfg),
		w:         watch(b, c, namespace),
		profiles:  profiles,
		args:      append(shippedArgs(b, c, namespace+"-system"), "--pprof-addr", profiles.addr),
	}
}

// shippedArgs are the flags of `teleop run` as shipped, with its own state
// (leader lease, chat state) in stateNamespace: the bot on an emulator of
// its own, leader election, the announcer telling notifyChats.
func shippedArgs(b *testing.B, c *cluster.Cluster, stateNamespace string) []string {
	emu := telegramemu.New(b, telegramemu.Options{})
	return []string{
		"--kubeconfig", c.Kubeconfig,
		"--namespace", stateNamespace,
		"--telegram-api-endpoint", emu.Endpoint(),
		"--telegram-token", emu.Token(),
		"--leader-elect",
		"--notify-chats", notifyChats,
		"--metrics-addr", "127.0.0.1:0",
		"--health-addr", "127.0.0.1:0",
	}
}

// start runs teleop and waits until its caches are synced.
func (t *teleopUnderTest) start(b *testing.B) *benchkit.Process {
	return benchkit.StartTeleop(b, t.binary, t.args...)
}

// createApps creates n TeleApps and waits until every status says Ready.
func (t *teleopUnderTest) createApps(b *testing.B, n int, replicas int32) phaseResult {
	return t.w.phase(b, n, func(i int) error {
		_, err := t.tele.TeleopV1alpha1().TeleApps(t.namespace).Create(context.Background(), teleApp(appName(i), replicas), metav1.CreateOptions{})
		return err
	}, t.w.deploymentsWith(b, n, replicas), t.w.teleAppsReady(b, n, func(string) int32 { return replicas }))
}

// restartResult: teleop is stopped, 1% of the apps are scaled, teleop
// starts again; how long until it leads, until its caches are synced, until
// the changed apps' Deployments have their new replicas (teleop's writes)
// and have rolled them out (the cluster's work), and until every status is
// right; and the writes to the apps that did not change: status writes (a
// storm if any) and the announcer's records of notices it still owed from
// before the stop (Telegram's pace leaves it behind a burst).
type restartResult struct {
	leading, synced, scaled, rolledOut, allRight time.Duration
	changed, storm                               int
	announcerRecords                             int
	peak                                         benchkit.Memory
}

// restart scales every hundredth app to `to` replicas while teleop is down
// (the other apps have `others`), starts teleop again and measures until
// every status is right. The CPU profile named round starts with the
// process.
func (t *teleopUnderTest) restart(b *testing.B, n int, round string, others, to int32) restartResult {
	ctx := context.Background()
	r := restartResult{changed: changedApps(n)}
	changed := map[string]bool{}
	for i := range r.changed {
		changed[appName(i*100)] = true
	}
	want := func(name string) int32 {
		if changed[name] {
			return to
		}
		return others
	}
	scaled := t.w.deploymentsWith(b, r.changed, to)
	rolledOut := t.w.deploymentsAvailable(b, r.changed, to)
	allRight := t.w.teleAppsReady(b, n, want)
	benchkit.Burst(b, r.changed, func(i int) error {
		_, err := t.tele.TeleopV1alpha1().TeleApps(t.namespace).Patch(ctx, appName(i*100), types.MergePatchType, replicasPatch(to), metav1.PatchOptions{})
		return err
	})
	statusBefore, metadataBefore := t.w.writes.ByName(statusWrites), t.w.writes.ByName(metadataWrites)
	proc := benchkit.LaunchTeleop(b, t.binary, t.args...)
	t.profiles.cpu(b, round)
	r.leading = proc.WaitLog(b, benchkit.LogLeading, time.Minute)
	r.synced = proc.WaitLog(b, benchkit.LogCachesSynced, time.Minute)
	r.scaled = scaled.Wait(b, "the changed apps' Deployments scaled after the restart", proc.Started(), phaseTimeout)
	r.rolledOut = rolledOut.Wait(b, "the changed apps' Deployments rolled out after the restart", proc.Started(), phaseTimeout)
	r.allRight = allRight.Wait(b, "every status right after the restart", proc.Started(), phaseTimeout)
	time.Sleep(5 * time.Second) // room for a late storm to show
	for name, count := range benchkit.Since(t.w.writes.ByName(statusWrites), statusBefore) {
		if !changed[name] {
			r.storm += count
		}
	}
	for name, count := range benchkit.Since(t.w.writes.ByName(metadataWrites), metadataBefore) {
		if !changed[name] {
			r.announcerRecords += count
		}
	}
	r.peak = proc.Memory(b)
	t.profiles.heap(b, round)
	t.profiles.wait()
	proc.Stop(b)
	if r.storm > 0 {
		b.Errorf("status storm after the restart: %d status writes to TeleApps that had not changed", r.storm)
	}
	return r
}

// describe is one restart on one line of the report.
func (r restartResult) describe(n int) string {
	return fmt.Sprintf("restart with %d apps changed: leading %.2fs, caches synced %.2fs, their Deployments scaled %.2fs and rolled out %.2fs, every status right %.2fs after start, %d status writes to the %d unchanged apps (%d announcer records of notices owed from before), peak RSS %.1f MiB",
		r.changed, r.leading.Seconds(), r.synced.Seconds(), r.scaled.Seconds(), r.rolledOut.Seconds(), r.allRight.Seconds(),
		r.storm, n-r.changed, r.announcerRecords, float64(r.peak.PeakRSS)/mib)
}

// changedApps is every hundredth of n apps: the ones a restart changes.
func changedApps(n int) int { return max(1, n/100) }

// rolloutAlone is the cluster's share of a restart, measured with teleop
// stopped: every hundredth app's Deployment is scaled to replicas directly,
// and it returns how long until they are rolled out.
func (t *teleopUnderTest) rolloutAlone(b *testing.B, n int, replicas int32) time.Duration {
	changed := changedApps(n)
	rolledOut := t.w.deploymentsAvailable(b, changed, replicas)
	start := time.Now()
	benchkit.Burst(b, changed, func(i int) error {
		_, err := t.kube.AppsV1().Deployments(t.namespace).Patch(context.Background(), appName(i*100), types.MergePatchType, replicasPatch(replicas), metav1.PatchOptions{})
		return err
	})
	return rolledOut.Wait(b, "the Deployments scaled directly rolled out", start, phaseTimeout)
}

// BenchmarkRestart runs once (use -benchtime=1x): teleop creates
// TELEOP_BENCH_APPS apps at 2 replicas, as BenchmarkOperator leaves them.
// Then, TELEOP_BENCH_RESTARTS times: with teleop stopped, every hundredth
// app's Deployment is scaled up by one directly, the baseline (the
// cluster's share of a restart); then those apps are scaled up by one more
// and teleop is started again. It reports the median and the spread of
// each step.
func BenchmarkRestart(b *testing.B) {
	if os.Getenv(cluster.EnvSkip) == "1" {
		b.Skip("SKIPPED: the restart benchmark needs the local control plane and TELEOP_SKIP_CLUSTER=1 is set")
	}
	n, rounds := positiveEnv(b, envApps, 1000), positiveEnv(b, envRestarts, 3)
	// Room for the pods of 2 replicas per app and of the changed apps' 2
	// more per round.
	c := startCluster(b, n+changedApps(n)*rounds)
	budget, err := benchkit.TeleopBudget(operator.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t := newTeleopUnderTest(b, c, budget, benchkit.BuildTeleop(b), "restart")
	defer t.w.writes.Stop()
	proc := t.start(b)
	created := t.createApps(b, n, scaledReplicas)
	proc.Stop(b)
	b.Logf("%d apps at %d replicas created and ready in %.1fs", n, scaledReplicas, created.ready.Seconds())

	restarts := make([]restartResult, rounds)
	alone := make([]float64, rounds)
	replicas := scaledReplicas
	for i := range rounds {
		// The baseline first, as the floor goes first in BenchmarkOperator:
		// whatever the cluster still does after the creation or the
		// previous round, the baseline meets it first.
		replicas++
		alone[i] = t.rolloutAlone(b, n, replicas).Seconds()
		replicas++
		restarts[i] = t.restart(b, n, fmt.Sprintf("restart-%d", i), scaledReplicas, replicas)
	}
	reportRestarts(b, n, restarts, alone)
}

func reportRestarts(b *testing.B, n int, results []restartResult, alone []float64) {
	var leading, synced, scaled, rolledOut, allRight, peaks []float64
	storm := 0
	for i, r := range results {
		b.Logf("%d: the cluster alone rolled out the change in %.2fs; then teleop's %s", i, alone[i], r.describe(n))
		leading = append(leading, r.leading.Seconds())
		synced = append(synced, r.synced.Seconds())
		scaled = append(scaled, r.scaled.Seconds())
		rolledOut = append(rolledOut, r.rolledOut.Seconds())
		allRight = append(allRight, r.allRight.Seconds())
		peaks = append(peaks, float64(r.peak.PeakRSS)/mib)
		storm += r.storm
	}
	b.Logf("%d restarts of teleop with %d apps, median (spread) in seconds after start: leading %v, caches synced %v, changed Deployments scaled %v, rolled out %v, every status right %v; peak RSS (MiB) %v",
		len(results), n, spreadOf(leading), spreadOf(synced), spreadOf(scaled), spreadOf(rolledOut), spreadOf(allRight), spreadOf(peaks))
	b.Logf("the cluster alone, scaling the same Deployments directly with teleop stopped, rolled them out in %v s", spreadOf(alone))
	b.ReportMetric(spreadOf(allRight).median, "restart-right-s")
	b.ReportMetric(spreadOf(synced).median, "restart-synced-s")
	b.ReportMetric(spreadOf(alone).median, "rollout-alone-s")
	b.ReportMetric(float64(storm), "restart-status-writes-to-unchanged")
}
