package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RealNode is a real kubelet (make node-bin) with containerd and runc from
// Debian's apt (make node-deps) next to KWOK's fake nodes. Its pods get
// addresses on a bridge of their own (RealNodePodCIDR, CNI bridge and
// host-local from containernetworking-plugins); one DNAT rule plays
// kube-proxy for the only Service they need, kubernetes (10.96.0.1:443 to the
// API server on loopback). The node is tainted RealNodeTaint, so only pods
// that tolerate it land there. It needs root; RealNodeMissing says what this
// machine lacks. One real node runs per machine at a time.
type RealNode struct {
	// SandboxImage is the pod sandbox (pause) image, e.g. PushPauseImage's.
	SandboxImage string
	// Registries are plain-HTTP registries (host:port) the node pulls from.
	Registries []string
}

// The real node's fixed names and addresses: one runs per machine.
const (
	RealNodeName = "teleop-node"
	// RealNodeTaint keeps pods off the real node unless they tolerate it
	// (NoSchedule): TeleApps' pods stay on KWOK's nodes.
	RealNodeTaint = "teleop.io/real-node"
	// RealNodeIP is the node's address, on its pod bridge: pods reach
	// services of the host (a test's Bot API emulator) there.
	RealNodeIP      = "10.244.77.1"
	RealNodePodCIDR = "10.244.77.0/24"
	realNodeBridge  = "teleop0"
	realNodeLock    = "/run/teleop-real-node.lock"
	// dnatComment marks the DNAT rule, so a later start finds a stale one.
	// One word: iptables -S prints it unquoted.
	dnatComment = "teleop-real-node-kubernetes-service"
	// cniBinDir is where Debian's containernetworking-plugins puts them.
	cniBinDir = "/usr/lib/cni"
	// kubernetesService is the kubernetes Service's ClusterIP (serviceCIDR).
	kubernetesService = "10.96.0.1"
	// realNodeReadyTimeout bounds kubelet's registration and first Ready.
	realNodeReadyTimeout = time.Minute
)

// kubeletChains are the iptables chains kubelet makes (table/chain); stop
// removes those it made.
var kubeletChains = []string{"filter/KUBE-FIREWALL", "filter/KUBE-KUBELET-CANARY", "nat/KUBE-KUBELET-CANARY", "mangle/KUBE-KUBELET-CANARY", "mangle/KUBE-IPTABLES-HINT"}

// RealNodeMissing says which prerequisite of a real node this machine lacks,
// and how to get it; nil when it has them all.
func RealNodeMissing() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: kubelet, containerd and the pod network need root")
	}
	for _, cmd := range []string{"containerd", "containerd-shim-runc-v2", "runc", "iptables", "ip"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("%s not on PATH (make node-deps installs containerd, runc, iptables and iproute2 from apt)", cmd)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			return fmt.Errorf("CNI plugin %s missing in %s (make node-deps installs containernetworking-plugins)", plugin, cniBinDir)
		}
	}
	if _, err := os.Stat(filepath.Join(BinDir(), "kubelet")); err != nil {
		return fmt.Errorf("kubelet missing in %s (make node-bin builds it)", BinDir())
	}
	filesystems, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Errorf("read /proc/filesystems: %w", err)
	}
	if !strings.Contains(string(filesystems), "\toverlay\n") {
		return errors.New("the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)")
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			return errors.New("no cgroup hierarchy at /sys/fs/cgroup (v1 or v2)")
		}
	}
	return nil
}

// realNode is a running RealNode: its processes and what stop undoes.
type realNode struct {
	RealNode
	dir, binDir string

	lock                *os.File
	containerd, kubelet *process
	socket              string
	// undo is run by stop, last first: the network, chains and cgroups
	// start changed on this machine.
	undo []func()
}

// realNodeConfig is what the control plane gives the real node.
type realNodeConfig struct {
	apiPort           int
	kubeconfig        string // the node's identity, system:node:<name>
	caCert, cert, key string
}

// start sets up the pod network, starts containerd and kubelet, and waits
// until the node is Ready. On failure the caller's Stop undoes it.
func (n *realNode) start(ctx context.Context, cfg realNodeConfig, admin *rest.Config) error {
	if err := RealNodeMissing(); err != nil {
		return fmt.Errorf("real node: %w", err)
	}
	if err := n.takeLock(); err != nil {
		return err
	}
	for _, sub := range []string{"containerd", "cni", "kubelet", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, sub), 0o755); err != nil {
			return fmt.Errorf("real node dir: %w", err)
		}
	}
	clearLeftovers()
	n.recordKubeletChains()
	n.recordCgroups()
	if err := n.setUpNetwork(cfg.apiPort); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	if err := n.startKubelet(ctx, cfg); err != nil {
		return err
	}
	return waitRealNodeReady(ctx, admin)
}

// takeLock makes sure no other real node runs on this machine: they would
// share the bridge, its addresses and the DNAT rule.
func (n *realNode) takeLock() error {
	f, err := os.OpenFile(realNodeLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("real node lock %s: %w", realNodeLock, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("another real node runs on this machine (lock %s): %w", realNodeLock, err)
	}
	n.lock = f
	return nil
}

// clearLeftovers removes the bridge and DNAT rules a real node killed
// before its stop left behind; under the lock, no other real node owns them.
func clearLeftovers() {
	_ = run("ip", "link", "del", realNodeBridge)
	rules, err := exec.Command("iptables", "-t", "nat", "-S", "PREROUTING").Output()
	if err != nil {
		return
	}
	for _, rule := range strings.Split(string(rules), "\n") {
		if !strings.Contains(rule, dnatComment) {
			continue
		}
		args := strings.Fields(strings.TrimPrefix(rule, "-A "))
		_ = run(append([]string{"iptables", "-t", "nat", "-D"}, args...)...)
	}
}

// setUpNetwork makes the pod bridge with the node's address and sends pods'
// connections to the kubernetes Service to the API server on loopback (which
// route_localnet allows for packets from the bridge).
func (n *realNode) setUpNetwork(apiPort int) error {
	bridge := [][]string{
		{"ip", "link", "add", realNodeBridge, "type", "bridge"},
		{"ip", "addr", "add", RealNodeIP + "/24", "dev", realNodeBridge},
		{"ip", "link", "set", realNodeBridge, "up"},
	}
	for i, args := range bridge {
		if err := run(args...); err != nil {
			return fmt.Errorf("pod bridge: %w", err)
		}
		if i == 0 {
			n.undo = append(n.undo, func() { _ = run("ip", "link", "del", realNodeBridge) })
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+realNodeBridge+"/route_localnet", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("allow DNAT to loopback from the pod bridge: %w", err)
	}
	rule := []string{"PREROUTING", "-s", RealNodePodCIDR, "-d", kubernetesService + "/32", "-p", "tcp", "--dport", "443",
		"-m", "comment", "--comment", dnatComment,
		"-j", "DNAT", "--to-destination", "127.0.0.1:" + strconv.Itoa(apiPort)}
	if err := run(append([]string{"iptables", "-t", "nat", "-A"}, rule...)...); err != nil {
		return fmt.Errorf("kubernetes Service DNAT: %w", err)
	}
	n.undo = append(n.undo, func() { _ = run(append([]string{"iptables", "-t", "nat", "-D"}, rule...)...) })
	return nil
}

// recordKubeletChains schedules the removal of kubelet's iptables chains that
// do not exist yet.
func (n *realNode) recordKubeletChains() {
	for _, tc := range kubeletChains {
		table, chain, _ := strings.Cut(tc, "/")
		if run("iptables", "-t", table, "-S", chain) == nil {
			continue
		}
		n.undo = append(n.undo, func() {
			for _, parent := range []string{"INPUT", "OUTPUT", "PREROUTING", "POSTROUTING", "FORWARD"} {
				for run("iptables", "-t", table, "-D", parent, "-j", chain) == nil {
				}
			}
			_ = run("iptables", "-t", table, "-F", chain)
			_ = run("iptables", "-t", table, "-X", chain)
		})
	}
}

// recordCgroups schedules the removal of the kubepods cgroups kubelet makes
// in each hierarchy that has none yet.
func (n *realNode) recordCgroups() {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		kubepods := filepath.Join(h, "kubepods")
		if _, err := os.Stat(kubepods); err == nil {
			continue
		}
		n.undo = append(n.undo, func() { removeCgroupTree(kubepods) })
	}
}

// removeCgroupTree removes an empty cgroup and its children, deepest first.
func removeCgroupTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir)
}

func (n *realNode) startContainerd(ctx context.Context) error {
	root := filepath.Join(n.dir, "containerd")
	n.socket = filepath.Join(root, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # Without CAP_SYS_RESOURCE (a Firecracker VM's root lacks it) runc cannot
  # give the sandbox the oom_score_adj -998 containerd asks for.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[8]q
`, filepath.Join(root, "root"), filepath.Join(root, "state"), n.socket, n.socket+".ttrpc",
		n.SandboxImage, cniBinDir, filepath.Join(n.dir, "cni"), filepath.Join(root, "certs.d"))
	files := map[string]string{
		filepath.Join(root, "config.toml"):                config,
		filepath.Join(n.dir, "cni", "10-teleop.conflist"): n.cniConfig(),
	}
	for _, registry := range n.Registries {
		files[filepath.Join(root, "certs.d", registry, "hosts.toml")] = fmt.Sprintf(
			"server = %[1]q\n[host.%[1]q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+registry)
	}
	if err := writeFiles(files); err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	path, _ := exec.LookPath("containerd")
	n.containerd = &process{name: "containerd", path: path, args: []string{"--config", filepath.Join(root, "config.toml")},
		logPath: filepath.Join(n.dir, "containerd.log")}
	if err := n.containerd.start(); err != nil {
		return err
	}
	return n.containerd.waitHealthy(ctx, func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "unix", n.socket)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// cniConfig is a bridge on the node's address with host-local addresses
// from RealNodePodCIDR. No masquerade: pods talk only to this host.
func (n *realNode) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "teleop-real-node",
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": true, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
  }]
}
`, realNodeBridge, RealNodePodCIDR, RealNodeIP, filepath.Join(n.dir, "cni", "ipam"))
}

func (n *realNode) startKubelet(ctx context.Context, cfg realNodeConfig) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	healthzPort := ports[1]
	// cgroup v1 only here: kubelet 1.35+ refuses it unless failCgroupV1 is
	// false. oomScoreAdj 0: without CAP_SYS_RESOURCE it cannot go lower.
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
tlsCertFile: %s
tlsPrivateKeyFile: %s
failSwapOn: false
oomScoreAdj: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization:
  mode: Webhook
podLogsDir: %s
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
registerWithTaints:
- {key: %s, effect: NoSchedule}
`, n.socket, RealNodeIP, ports[0], healthzPort, cfg.cert, cfg.key, cfg.caCert, filepath.Join(n.dir, "pod-logs"), RealNodeTaint)
	configPath := filepath.Join(n.dir, "kubelet", "config.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	n.kubelet = &process{name: "kubelet", path: filepath.Join(n.binDir, "kubelet"), logPath: filepath.Join(n.dir, "kubelet.log"),
		args: []string{"--config", configPath, "--kubeconfig", cfg.kubeconfig, "--root-dir", filepath.Join(n.dir, "kubelet"),
			"--hostname-override", RealNodeName, "--node-ip", RealNodeIP}}
	if err := n.kubelet.start(); err != nil {
		return err
	}
	return n.kubelet.waitHealthy(ctx, httpCheck(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(healthzPort)+"/healthz", ""))
}

// waitRealNodeReady waits until the kubelet registered its node and reports
// it Ready.
func waitRealNodeReady(ctx context.Context, admin *rest.Config) error {
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("client for the real node: %w", err)
	}
	last := "not registered"
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, realNodeReadyTimeout, true, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, RealNodeName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = fmt.Sprintf("Ready=%s: %s", c.Status, c.Message)
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("real node %s not Ready: %w (%s)", RealNodeName, err, last)
	}
	return nil
}

// stop stops kubelet, removes every pod sandbox through the CRI (stopping
// their containers and tearing down their network, as crictl rmp would),
// stops containerd, unmounts what is left under the node's directory and
// undoes the host changes.
func (n *realNode) stop() {
	if n.kubelet != nil {
		n.kubelet.stop()
	}
	if n.containerd != nil && n.containerd.running() {
		if err := n.removeSandboxes(); err != nil {
			fmt.Fprintf(os.Stderr, "real node: remove pod sandboxes: %v\n", err)
		}
		n.containerd.stop()
	}
	unmountUnder(n.dir)
	for i := len(n.undo) - 1; i >= 0; i-- {
		n.undo[i]()
	}
	if n.lock != nil {
		n.lock.Close()
	}
}

func (n *realNode) removeSandboxes() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	runtime := runtimeapi.NewRuntimeServiceClient(conn)
	sandboxes, err := runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var errs []error
	for _, s := range sandboxes.Items {
		if _, err := runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.Metadata.GetName(), err))
			continue
		}
		if _, err := runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.Metadata.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount point below dir (kubelet's volume
// tmpfs, containerd's leftovers), deepest first, so dir can be removed.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// run runs a command and returns its error with its output.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func writeFiles(files map[string]string) error {
	for path, data := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}
