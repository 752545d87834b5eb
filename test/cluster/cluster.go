// Package cluster starts a real, local Kubernetes control plane for tests:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK (fake
// nodes and kubelets) on loopback, from binaries hack/cluster/build.sh puts in
// BinDir. Deployments, ReplicaSets, garbage collection, scheduling, RBAC and
// admission are the real thing; only containers are simulated by KWOK stages.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Start. The zero value is a working default.
type Options struct {
	// Dir holds PKI, etcd data, kubeconfigs and component logs. When empty a
	// temporary directory is created and removed by Stop; a given Dir is
	// kept, and only its etcd data is wiped at start.
	Dir string
	// BinDir holds the component binaries; BinDir() when empty.
	BinDir string
	// Nodes is the number of fake nodes; 2 when zero.
	Nodes int
	// Profiling serves kube-apiserver's /debug/pprof to the admin user, for
	// benchmarks that look at where the server's CPU goes; off otherwise.
	Profiling bool
	// RealNode, when set, adds a real node next to the fake ones: kubelet,
	// containerd and runc running pods (see RealNode; needs root).
	RealNode *RealNode
}

// Cluster is a running local control plane, or a handle on one started by
// another process (see Shared).
type Cluster struct {
	// Kubeconfig is the path of an admin kubeconfig for the cluster
	// (Dir/admin.kubeconfig for one Start made).
	Kubeconfig string
	// Dir holds the cluster's files, logs included (<component>.log).
	Dir string
	// ReadyAfter is how long Start took until the plane was usable.
	ReadyAfter time.Duration

	admin      *rest.Config
	binDir     string
	removeDir  bool
	components []*process // in start order; nil when the plane is not ours
	apiServer  *process
	realNode   *realNode // nil without Options.RealNode
	stopOnce   sync.Once
}

// Tuning shared by components and clients: tests create objects in bursts.
const (
	clientQPS   = 200
	clientBurst = 400
	// serviceCIDR's first address is the kubernetes Service's ClusterIP.
	serviceCIDR = "10.96.0.0/16"
	// advertiseAddress is a documentation address (RFC 5737) where nothing
	// listens. kube-apiserver refuses loopback here; with
	// --endpoint-reconciler-type=none it is never dialled.
	advertiseAddress = "192.0.2.1"
	startTimeout     = 2 * time.Minute
)

// Start brings up the control plane and returns once fake nodes are Ready and
// schedulable and the default ServiceAccount exists, so pods can be created
// right away. On failure everything started is stopped again and the error
// names the failing component with the tail of its log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	c, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx, opts); err != nil {
		c.Stop()
		return nil, err
	}
	c.ReadyAfter = time.Since(begin)
	return c, nil
}

// prepare makes the directory and checks the binaries.
func prepare(opts Options) (*Cluster, error) {
	c := &Cluster{binDir: opts.BinDir}
	if c.binDir == "" {
		c.binDir = BinDir()
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"} {
		if _, err := os.Stat(filepath.Join(c.binDir, name)); err != nil {
			return nil, fmt.Errorf("control-plane binary %s missing in %s (build them with `make cluster-bin` or hack/cluster/build.sh): %w", name, c.binDir, err)
		}
	}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "teleop-cluster-")
		if err != nil {
			return nil, fmt.Errorf("create cluster dir: %w", err)
		}
		c.Dir, c.removeDir = dir, true
	} else {
		dir, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("cluster dir %s: %w", opts.Dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create cluster dir: %w", err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
			return nil, fmt.Errorf("wipe old etcd data: %w", err)
		}
		c.Dir = dir
	}
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	return c, nil
}

func (c *Cluster) start(ctx context.Context, opts Options) error {
	_, serviceNet, err := net.ParseCIDR(serviceCIDR)
	if err != nil {
		return fmt.Errorf("service CIDR: %w", err)
	}
	serviceIP := net.IPv4(serviceNet.IP[0], serviceNet.IP[1], serviceNet.IP[2], serviceNet.IP[3]+1)
	keys, tokens, err := writePKI(c.Dir, serviceIP, net.ParseIP(advertiseAddress))
	if err != nil {
		return err
	}
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	etcdPort, etcdPeerPort, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	apiURL := "https://127.0.0.1:" + strconv.Itoa(apiPort)

	c.admin = &rest.Config{
		Host:            apiURL,
		BearerToken:     tokens[userAdmin],
		TLSClientConfig: rest.TLSClientConfig{CAData: keys.caPEM},
	}
	kubeconfigs := map[string]string{}
	for _, u := range staticUsers {
		path := filepath.Join(c.Dir, strings.ReplaceAll(u.name, ":", "-")+".kubeconfig")
		if err := writeKubeconfig(path, apiURL, keys.caPEM, u.name, tokens[u.name]); err != nil {
			return err
		}
		kubeconfigs[u.name] = path
	}
	kwokConfig, err := writeKWOKConfig(c.Dir)
	if err != nil {
		return err
	}

	etcd := c.component("etcd",
		"--name=default",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--advertise-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(etcdPeerPort),
		"--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(etcdPeerPort),
		"--initial-cluster=default=http://127.0.0.1:"+strconv.Itoa(etcdPeerPort),
		"--unsafe-no-fsync", // test data: durability is not worth the latency
		"--log-level=warn",
	)
	c.apiServer = c.component("kube-apiserver",
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--advertise-address="+advertiseAddress,
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+keys.servingCert,
		"--tls-private-key-file="+keys.servKey,
		"--client-ca-file="+keys.caCert,
		"--token-auth-file="+keys.tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+keys.saPub,
		"--service-account-signing-key-file="+keys.saKey,
		"--service-cluster-ip-range="+serviceCIDR,
		"--allow-privileged=true",
		"--profiling="+strconv.FormatBool(opts.Profiling),
		// pods/log and friends: KWOK's kubelet server, at each node's
		// InternalIP (loopback) with a serving cert of the cluster CA.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority="+keys.caCert,
		"--kubelet-client-certificate="+keys.kubeletClientCert,
		"--kubelet-client-key="+keys.kubeletClientKey,
	)
	// With watchers connected, kube-apiserver finishes its shutdown within
	// a fraction of a second but then lingers on their connections; a
	// restart in a fault test need not wait for that.
	c.apiServer.stopGrace = 2 * time.Second
	kcm := c.component("kube-controller-manager",
		"--kubeconfig="+kubeconfigs[userControllerManager],
		"--authentication-kubeconfig="+kubeconfigs[userControllerManager],
		"--authorization-kubeconfig="+kubeconfigs[userControllerManager],
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		"--cert-dir="+filepath.Join(c.Dir, "kube-controller-manager"),
		"--controllers=*",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+keys.saKey,
		"--root-ca-file="+keys.caCert,
		"--cluster-signing-cert-file="+keys.caCert,
		"--cluster-signing-key-file="+keys.caKey,
		"--kube-api-qps="+strconv.Itoa(clientQPS),
		"--kube-api-burst="+strconv.Itoa(clientBurst),
		"--profiling=false",
	)
	scheduler := c.component("kube-scheduler",
		"--kubeconfig="+kubeconfigs[userScheduler],
		"--authentication-kubeconfig="+kubeconfigs[userScheduler],
		"--authorization-kubeconfig="+kubeconfigs[userScheduler],
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
		"--cert-dir="+filepath.Join(c.Dir, "kube-scheduler"),
		"--leader-elect=false",
		"--profiling=false",
	)
	kwok := c.component("kwok",
		"--kubeconfig="+kubeconfigs[userKWOK],
		"--config="+kwokConfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+fakeNodeAnnotation+"=fake",
		"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--node-ip=127.0.0.1",
		"--node-port="+strconv.Itoa(kwokPort),
		"--tls-cert-file="+keys.kubeletCert,
		"--tls-private-key-file="+keys.kubeletKey,
		"--node-lease-duration-seconds=40",
	)

	if err := etcd.start(); err != nil {
		return err
	}
	if err := etcd.waitHealthy(ctx, httpCheck(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(etcdPort)+"/health", "")); err != nil {
		return err
	}
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	// Nodes exist before KWOK starts, so it adopts them with their capacity.
	if err := createFakeNodes(ctx, c.RESTConfig(), nodeCount(opts)); err != nil {
		return err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // self-signed health endpoints on loopback
	checks := map[*process]func(context.Context) error{
		kcm:       httpCheck(insecure, "https://127.0.0.1:"+strconv.Itoa(kcmPort)+"/healthz", ""),
		scheduler: httpCheck(insecure, "https://127.0.0.1:"+strconv.Itoa(schedPort)+"/healthz", ""),
		kwok:      httpCheck(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(kwokPort)+"/healthz", ""),
	}
	for _, p := range []*process{kcm, scheduler, kwok} {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range []*process{kcm, scheduler, kwok} {
		if err := p.waitHealthy(ctx, checks[p]); err != nil {
			return err
		}
	}
	if err := waitUsable(ctx, c.RESTConfig(), nodeCount(opts)); err != nil {
		return err
	}
	if opts.RealNode == nil {
		return nil
	}
	c.realNode = &realNode{RealNode: *opts.RealNode, dir: filepath.Join(c.Dir, "real-node"), binDir: c.binDir}
	return c.realNode.start(ctx, realNodeConfig{
		apiPort:    apiPort,
		kubeconfig: kubeconfigs[userRealNode],
		caCert:     keys.caCert,
		cert:       keys.nodeCert,
		key:        keys.nodeKey,
	}, c.RESTConfig())
}

// component registers a component to be stopped, in reverse order, by Stop.
func (c *Cluster) component(name string, args ...string) *process {
	p := &process{
		name:    name,
		path:    filepath.Join(c.binDir, name),
		args:    args,
		logPath: filepath.Join(c.Dir, name+".log"),
	}
	// A fresh log per Start; restarts of the same component append.
	_ = os.Remove(p.logPath)
	c.components = append(c.components, p)
	return p
}

func nodeCount(opts Options) int {
	if opts.Nodes > 0 {
		return opts.Nodes
	}
	return 2
}

// StartAPIServer (re)starts kube-apiserver on its port and waits until it is
// ready. Used by Start and by fault tests after StopAPIServer.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.apiServer == nil {
		return errors.New("kube-apiserver of this cluster is not managed by this process")
	}
	if c.apiServer.running() {
		return nil
	}
	if err := c.apiServer.start(); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.admin.CAData)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return c.apiServer.waitHealthy(ctx, httpCheck(client, c.admin.Host+"/readyz", c.admin.BearerToken))
}

// StopAPIServer stops kube-apiserver (the rest of the plane keeps running)
// until StartAPIServer. Only for a cluster this process started.
func (c *Cluster) StopAPIServer() error {
	if c.apiServer == nil {
		return errors.New("kube-apiserver of this cluster is not managed by this process")
	}
	c.apiServer.stop()
	return nil
}

// APIServerPID is the process ID of kube-apiserver, for benchmarks that
// read its CPU time. Only for a cluster this process started and runs.
func (c *Cluster) APIServerPID() (int, error) {
	if c.apiServer == nil || !c.apiServer.running() {
		return 0, errors.New("kube-apiserver of this cluster is not running in this process")
	}
	return c.apiServer.cmd.Process.Pid, nil
}

// Stop stops every component this process started, newest first, and removes
// a temporary Dir. Safe to call more than once; a no-op on a cluster started
// by another process.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		if c.realNode != nil {
			c.realNode.stop()
		}
		for i := len(c.components) - 1; i >= 0; i-- {
			c.components[i].stop()
		}
		if c.removeDir {
			_ = os.RemoveAll(c.Dir)
		}
	})
}

// RESTConfig returns a fresh admin config with QPS and Burst high enough for
// tests that create objects in bursts.
func (c *Cluster) RESTConfig() *rest.Config {
	cfg := rest.CopyConfig(c.admin)
	cfg.QPS = clientQPS
	cfg.Burst = clientBurst
	return cfg
}

// Impersonate returns an admin config acting as user with groups, as an
// authenticating proxy would: RBAC then decides what the identity may do.
func (c *Cluster) Impersonate(user string, groups ...string) *rest.Config {
	cfg := c.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// Kubectl runs the built kubectl against the cluster and returns its stdout.
// A failure's error carries kubectl's stderr, so tests can assert on what a
// user would read.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Attach returns a handle on a cluster another process runs, from its admin
// kubeconfig. Stop, StopAPIServer and StartAPIServer do nothing on it.
func Attach(kubeconfig string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return &Cluster{
		Kubeconfig: kubeconfig,
		Dir:        filepath.Dir(kubeconfig),
		admin:      cfg,
		binDir:     BinDir(),
	}, nil
}

// httpCheck returns a health check that GETs url (with a bearer token when
// given) and wants 200.
func httpCheck(client *http.Client, url, token string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func writeKubeconfig(path, server string, caPEM []byte, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["teleop-local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["teleop-local"] = &clientcmdapi.Context{Cluster: "teleop-local", AuthInfo: user}
	cfg.CurrentContext = "teleop-local"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
