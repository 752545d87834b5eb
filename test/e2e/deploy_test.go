package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/test/cluster"
)

const systemNamespace = "teleop-system"

// ensureSystemNamespace creates teleop-system, where the manifests install
// teleop, if it is not there yet.
func ensureSystemNamespace(t *testing.T, e *env) {
	t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// serverDryRun applies rendered manifests with a server-side dry run: the API
// server validates every object (schema, defaulting, admission) and stores
// nothing.
func serverDryRun(t *testing.T, e *env, manifests string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rendered.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifests), 0o600))
	out, err := e.cluster.Kubectl(ctx(t), "apply", "--dry-run=server", "--server-side", "--force-conflicts", "--field-manager=e2e", "-f", path)
	require.NoError(t, err, out)
}

func TestKustomizeOverlaysApply(t *testing.T) {
	e := newEnv(t)
	ensureSystemNamespace(t, e)
	for _, overlay := range []string{"polling", "webhook"} {
		t.Run(overlay, func(t *testing.T) {
			rendered, err := e.cluster.Kubectl(ctx(t), "kustomize", filepath.Join(cluster.RepoRoot(), "deploy/overlays", overlay))
			require.NoError(t, err, rendered)
			assert.Contains(t, rendered, "kind: CustomResourceDefinition")
			assert.Contains(t, rendered, "name: teleop-editor")
			assert.Contains(t, rendered, "readOnlyRootFilesystem: true")
			if overlay == "webhook" {
				assert.Contains(t, rendered, "kind: Ingress")
				assert.Contains(t, rendered, "TELEOP_WEBHOOK_SECRET")
			}
			serverDryRun(t, e, rendered)
		})
	}
}

func helmBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(cluster.BinDir(), "helm")
	_, err := os.Stat(path)
	require.NoError(t, err, "helm is built by `make helm-bin` (part of make test)")
	return path
}

func TestHelmChart(t *testing.T) {
	e := newEnv(t)
	helm := helmBinary(t)
	chart := filepath.Join(cluster.RepoRoot(), "deploy/helm/teleop")
	tests := []struct {
		name     string
		set      []string
		want     []string
		dontWant []string
		wantErr  string
	}{
		{name: "polling", want: []string{"kind: Deployment", "name: teleop-viewer", `value: "polling"`}},
		{name: "webhook with ingress", set: []string{"telegram.mode=webhook", "webhook.url=https://t.example.com/telegram", "webhook.ingress.enabled=true"},
			want: []string{"kind: Ingress", "TELEOP_WEBHOOK_SECRET", "containerPort: 8443"}},
		{name: "admins and chats", set: []string{"admins={1,2}", "notifyChats={-100}", "replicas=3", "leaderElection=true"},
			want: []string{`value: "1,2"`, `value: "-100"`, "replicas: 3"}},
		{name: "a token secret", set: []string{"telegram.createSecret=true", "telegram.token=1:abc"}, want: []string{"kind: Secret"}},
		{name: "the token Secret is required", want: []string{"TELEGRAM_BOT_TOKEN_FILE", "secretName: teleop-telegram"}, dontWant: []string{"optional: true"}},
		{name: "operator only", set: []string{"telegram.enabled=false"}, want: []string{"kind: Deployment"}, dontWant: []string{"TELEGRAM_BOT_TOKEN_FILE", "secretName:"}},
		{name: "operator only has no webhook", set: []string{"telegram.enabled=false", "telegram.mode=webhook", "webhook.url=https://t.example.com/telegram"},
			wantErr: "telegram.enabled=false runs no bot"},
		{name: "bad mode", set: []string{"telegram.mode=fax"}, wantErr: "telegram.mode must be polling or webhook"},
		{name: "webhook without url", set: []string{"telegram.mode=webhook"}, wantErr: "webhook mode needs webhook.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", "teleop", chart, "--namespace", e.appsNS}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			out, err := exec.Command(helm, args...).CombinedOutput()
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, string(out), tt.wantErr)
				return
			}
			require.NoError(t, err, string(out))
			for _, w := range tt.want {
				assert.Contains(t, string(out), w)
			}
			for _, w := range tt.dontWant {
				assert.NotContains(t, string(out), w)
			}
			// The chart's cluster-wide roles would clash across subtests, so
			// the dry run checks the namespaced objects and the roles alike
			// without storing anything.
			serverDryRun(t, e, string(out))
		})
	}
}

// teleop running with nothing but its ServiceAccount's token, as the
// Deployment runs it, can do its whole job, and no more.
func TestServiceAccountRBACIsEnoughAndNoMore(t *testing.T) {
	e := newEnv(t)
	ensureSystemNamespace(t, e)
	out, err := e.cluster.Kubectl(ctx(t), "apply", "-k", filepath.Join(cluster.RepoRoot(), "deploy/rbac"))
	require.NoError(t, err, out)

	saConfig := serviceAccountConfig(t, e, systemNamespace, "teleop")
	kubeconfig := writeKubeconfig(t, saConfig)
	args := []string{"--kubeconfig", kubeconfig, "--namespace", systemNamespace, "--watch-namespace", e.appsNS,
		"--telegram-api-endpoint", e.emu.Endpoint(), "--telegram-token", e.emu.Token(), "--metrics-addr", freeAddr(t),
		"--admins", "7007", "--leader-elect"}
	p := e.spawn("run", args...)
	p.waitReady(t)

	admin := e.user(7007, "root")
	admin.say("/ns "+e.appsNS, e.appsNS)
	admin.say("/create web nginx:1.27 2", "created")
	admin.waitText("ready")
	alice := e.user(1001, "alice")
	alice.grant("teleop-viewer")
	alice.say("/ns "+e.appsNS, e.appsNS)
	alice.say("/scale web 3", "teleop-editor")
	assert.NotContains(t, p.log.String(), "forbidden", "teleop's own calls are all allowed")

	sa := kubernetes.NewForConfigOrDie(saConfig)
	_, err = sa.CoreV1().Secrets(e.appsNS).List(ctx(t), metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "secrets are not teleop's business: %v", err)
	_, err = sa.CoreV1().ConfigMaps(e.appsNS).Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	assert.True(t, apierrors.IsForbidden(err), "ConfigMaps only in its own namespace: %v", err)
	err = sa.CoreV1().Nodes().Delete(ctx(t), "kwok-node-0", metav1.DeleteOptions{})
	assert.True(t, apierrors.IsForbidden(err), "no cluster-admin powers: %v", err)
}

// serviceAccountConfig is a client config with a token of the ServiceAccount
// namespace/name, as its pods get.
func serviceAccountConfig(t *testing.T, e *env, namespace, name string) *rest.Config {
	t.Helper()
	var token *authenticationv1.TokenRequest
	require.Eventually(t, func() bool {
		var err error
		token, err = e.kube.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "a token for the ServiceAccount %s/%s", namespace, name)
	cfg := rest.AnonymousClientConfig(e.cluster.RESTConfig())
	cfg.BearerToken = token.Status.Token
	return cfg
}

func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, CertificateAuthority: cfg.CAFile}
	kc.AuthInfos["teleop"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["teleop"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "teleop"}
	kc.CurrentContext = "teleop"
	path := filepath.Join(t.TempDir(), "teleop.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	return path
}

// hookObjects renders the chart and returns its pre-delete hook objects.
func hookObjects(t *testing.T, namespace string) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command(helmBinary(t), "template", "teleop", filepath.Join(cluster.RepoRoot(), "deploy/helm/teleop"), "--namespace", namespace).CombinedOutput()
	require.NoError(t, err, string(out))
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var hooks []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return hooks
		}
		require.NoError(t, err)
		if obj.GetAnnotations()["helm.sh/hook"] == "pre-delete" {
			hooks = append(hooks, obj)
		}
	}
}

// helm uninstall's pre-delete hook is a Job that runs teleop uninstall with
// a ServiceAccount whose rights are enough to stop teleop and release every
// TeleApp: proven by running teleop uninstall with that ServiceAccount's
// token against a running teleop Deployment.
func TestHelmUninstallHook(t *testing.T) {
	e := newEnv(t)
	hooks := hookObjects(t, e.systemNS)
	var kinds []string
	var job *unstructured.Unstructured
	var rbac []string
	for _, h := range hooks {
		kinds = append(kinds, h.GetKind())
		assert.Contains(t, h.GetAnnotations()["helm.sh/hook-delete-policy"], "hook-succeeded", h.GetKind())
		if h.GetKind() == "Job" {
			job = h
			continue
		}
		weight, err := strconv.Atoi(h.GetAnnotations()["helm.sh/hook-weight"])
		require.NoError(t, err)
		assert.Less(t, weight, 0, "%s before the Job (weight 0)", h.GetKind())
		data, err := json.Marshal(h.Object)
		require.NoError(t, err)
		rbac = append(rbac, string(data))
	}
	assert.ElementsMatch(t, []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Job"}, kinds)
	require.NotNil(t, job)
	pod, _, _ := unstructured.NestedMap(job.Object, "spec", "template", "spec")
	assert.Equal(t, "teleop-uninstall", pod["serviceAccountName"])
	containers, _, _ := unstructured.NestedSlice(pod, "containers")
	require.Len(t, containers, 1)
	assert.Equal(t, []any{"uninstall", "--deployment", "teleop"}, containers[0].(map[string]any)["args"])

	// The hook's RBAC, for real; teleop running as its Deployment.
	path := filepath.Join(t.TempDir(), "hook-rbac.json")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(rbac, "\n")), 0o600))
	out, err := e.cluster.Kubectl(ctx(t), "apply", "-f", path)
	require.NoError(t, err, out)
	t.Cleanup(func() { _, _ = e.cluster.Kubectl(context.Background(), "delete", "-f", path, "--ignore-not-found") })
	_, err = e.kube.AppsV1().Deployments(e.systemNS).Create(ctx(t), teleopDeployment(), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.tele.TeleopV1alpha1().TeleApps(e.appsNS).Create(ctx(t), &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Finalizers: []string{announce.Finalizer}},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	kubeconfig := writeKubeconfig(t, serviceAccountConfig(t, e, e.systemNS, "teleop-uninstall"))
	run := exec.Command(teleopBinary, "uninstall", "--kubeconfig", kubeconfig, "--namespace", e.systemNS,
		"--deployment", "teleop", "--watch-namespace", e.appsNS)
	report, err := run.CombinedOutput()
	require.NoError(t, err, string(report))
	assert.Contains(t, string(report), "scaled Deployment")
	assert.Contains(t, string(report), "released TeleApp "+e.appsNS+"/web")
	assert.Empty(t, e.teleApp("web").Finalizers)
	teleop, err := e.kube.AppsV1().Deployments(e.systemNS).Get(ctx(t), "teleop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(0), *teleop.Spec.Replicas)
}

// teleopDeployment stands for teleop's own Deployment; KWOK's nodes run it.
func teleopDeployment() *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "teleop"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "teleop"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "teleop", Image: "teleop:test"}}},
			},
		},
	}
}
