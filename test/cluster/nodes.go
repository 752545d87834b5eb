package cluster

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fakeNodeAnnotation marks the nodes KWOK manages.
const fakeNodeAnnotation = "kwok.x-k8s.io/node"

// Capacity of each fake node: generous, so a benchmark's thousand pods fit.
var fakeNodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("1000"),
	corev1.ResourceMemory: resource.MustParse("4Ti"),
	corev1.ResourcePods:   resource.MustParse("5000"),
}

// stages are kwokctl's default stages (copied from sigs.k8s.io/kwok@v0.8.0)
// plus pod-image-pull-backoff, which turns images ending in ":broken" into
// ImagePullBackOff.
//
//go:embed stages/*.yaml
var stages embed.FS

// FakeLogLines is how many lines the log of every fake container has;
// FakeLogLine(i) is line i, counting from 1. KWOK serves them through its
// kubelet API, so pods/log works as on a real node.
const FakeLogLines = 300

// FakeLogLine is line i of every fake container's log. It carries HTML and
// quotes, so whoever shows it must escape it.
func FakeLogLine(i int) string {
	return fmt.Sprintf(`fake log line %03d: GET /<b>index</b>.html?a=1&b=2 "ok"`, i)
}

// clusterLogs is the KWOK ClusterLogs document that gives every container
// of every pod the log file at path.
const clusterLogs = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: fake-container-logs
spec:
  logs:
  - logsFile: %q
`

// writeFakeLog writes the fake containers' log in the CRI format a kubelet
// reads (timestamp, stream, tag, line).
func writeFakeLog(path string) error {
	var b strings.Builder
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= FakeLogLines; i++ {
		fmt.Fprintf(&b, "%s stdout F %s\n", start.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), FakeLogLine(i))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write fake container log: %w", err)
	}
	return nil
}

// writeKWOKConfig writes KWOK's --config file: the embedded stages and the
// ClusterLogs of the fake containers, whose log it writes beside it.
func writeKWOKConfig(dir string) (string, error) {
	logPath := filepath.Join(dir, "fake-container.log")
	if err := writeFakeLog(logPath); err != nil {
		return "", err
	}
	entries, err := stages.ReadDir("stages")
	if err != nil {
		return "", fmt.Errorf("read embedded stages: %w", err)
	}
	var docs []string
	for _, e := range entries {
		data, err := stages.ReadFile("stages/" + e.Name())
		if err != nil {
			return "", fmt.Errorf("read stage %s: %w", e.Name(), err)
		}
		docs = append(docs, string(data))
	}
	docs = append(docs, fmt.Sprintf(clusterLogs, logPath))
	path := filepath.Join(dir, "kwok-config.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

func fakeNodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// createFakeNodes creates n Nodes for KWOK and sets their capacity.
func createFakeNodes(ctx context.Context, cfg *rest.Config, n int) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for fake nodes: %w", err)
	}
	for i := range n {
		name := fakeNodeName(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{fakeNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
				},
			},
		}
		created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create fake node %s: %w", name, err)
		}
		created.Status.Capacity = fakeNodeCapacity
		created.Status.Allocatable = fakeNodeCapacity
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("set capacity of fake node %s: %w", name, err)
		}
	}
	return nil
}

// waitUsable waits until n fake nodes are Ready without NoSchedule taints (the
// node lifecycle controller lifts not-ready taints only after KWOK's first
// status) and the default namespace has its ServiceAccount, which admission
// requires for every pod.
func waitUsable(ctx context.Context, cfg *rest.Config, n int) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client for readiness: %w", err)
	}
	var lastProblem string
	err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		lastProblem = usableProblem(ctx, client, n)
		return lastProblem == "", nil
	})
	if err != nil {
		return fmt.Errorf("cluster not usable: %w (%s)", err, lastProblem)
	}
	return nil
}

// usableProblem names what still keeps the cluster from being usable, or is
// empty.
func usableProblem(ctx context.Context, client kubernetes.Interface, n int) string {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("list nodes: %v", err)
	}
	ready := 0
	for _, node := range nodes.Items {
		if nodeSchedulable(&node) {
			ready++
		}
	}
	if ready < n {
		return fmt.Sprintf("%d of %d fake nodes Ready and untainted", ready, n)
	}
	if _, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return "default ServiceAccount not created yet"
		}
		return fmt.Sprintf("get default ServiceAccount: %v", err)
	}
	return ""
}

func nodeSchedulable(node *corev1.Node) bool {
	for _, taint := range node.Spec.Taints {
		if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
