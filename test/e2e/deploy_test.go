package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

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
		name    string
		set     []string
		want    []string
		wantErr string
	}{
		{name: "polling", want: []string{"kind: Deployment", "name: teleop-viewer", `value: "polling"`}},
		{name: "webhook with ingress", set: []string{"telegram.mode=webhook", "webhook.url=https://t.example.com/telegram", "webhook.ingress.enabled=true"},
			want: []string{"kind: Ingress", "TELEOP_WEBHOOK_SECRET", "containerPort: 8443"}},
		{name: "admins and chats", set: []string{"admins={1,2}", "notifyChats={-100}", "replicas=3", "leaderElection=true"},
			want: []string{`value: "1,2"`, `value: "-100"`, "replicas: 3"}},
		{name: "a token secret", set: []string{"telegram.createSecret=true", "telegram.token=1:abc"}, want: []string{"kind: Secret"}},
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

	saConfig := serviceAccountConfig(t, e)
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

func serviceAccountConfig(t *testing.T, e *env) *rest.Config {
	t.Helper()
	var token *authenticationv1.TokenRequest
	require.Eventually(t, func() bool {
		var err error
		token, err = e.kube.CoreV1().ServiceAccounts(systemNamespace).CreateToken(context.Background(), "teleop",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "a token for the teleop ServiceAccount")
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
