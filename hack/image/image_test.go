package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
	"github.com/teleop/teleop/test/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// logTo starts cmd with its output in a file, stops it when the test ends,
// and returns a function that reads what it wrote so far.
func logTo(t *testing.T, cmd *exec.Cmd) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "output")
	out, err := os.Create(path)
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = out.Close() })
	return func() string {
		data, _ := os.ReadFile(path)
		return string(data)
	}
}

// layerFiles reads the files of the image's flattened filesystem.
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	files := map[string]*tar.Header{}
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		files[hdr.Name] = hdr
	}
}

// extractBinary writes the image's /teleop to dir.
func extractBinary(t *testing.T, img v1.Image, dir string) string {
	t.Helper()
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	for {
		hdr, err := tr.Next()
		require.NoError(t, err, "no /teleop in the image")
		if hdr.Name != "teleop" {
			continue
		}
		path := filepath.Join(dir, "teleop")
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
		require.NoError(t, err)
		_, err = io.Copy(out, tr)
		require.NoError(t, err)
		require.NoError(t, out.Close())
		return path
	}
}

// The image is built twice to the same digest, pushed to a real registry,
// pulled back, and what it holds runs: teleop version, and teleop run as an
// operator reconciling a TeleApp on the local control plane.
func TestImageBuildsPushesAndRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	o := options{root: cluster.RepoRoot(), version: "v0.0.0-test", revision: "0123abc", source: "https://github.com/teleop/teleop",
		epoch: time.Unix(1700000000, 0).UTC(), arch: "amd64"}
	img, err := build(ctx, o)
	require.NoError(t, err)
	again, err := build(ctx, o)
	require.NoError(t, err)
	digest, err := img.Digest()
	require.NoError(t, err)
	againDigest, err := again.Digest()
	require.NoError(t, err)
	assert.Equal(t, digest, againDigest, "reproducible")
	require.NoError(t, writeLayout(filepath.Join(t.TempDir(), "layout"), img, o.version))

	repo := cluster.Registry(t) + "/teleop"
	tag, err := push(ctx, img, repo, o.version)
	require.NoError(t, err)
	pulled, err := remote.Image(tag, remote.WithContext(ctx))
	require.NoError(t, err)
	pulledDigest, err := pulled.Digest()
	require.NoError(t, err)
	assert.Equal(t, digest, pulledDigest)

	cfg, err := pulled.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", cfg.Config.User)
	assert.Equal(t, []string{"/teleop"}, cfg.Config.Entrypoint)
	assert.Equal(t, []string{"run"}, cfg.Config.Cmd)
	assert.Equal(t, "linux", cfg.OS)
	for label, want := range map[string]string{
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
	} {
		assert.Equal(t, want, cfg.Config.Labels[label], label)
	}

	files := layerFiles(t, pulled)
	require.Contains(t, files, "tmp")
	assert.Equal(t, int64(0o1777), files["tmp"].Mode&0o7777, "/tmp for everyone, sticky")
	assert.Contains(t, files, "etc/passwd")
	assert.Greater(t, files["etc/ssl/certs/ca-certificates.crt"].Size, int64(100_000), "the CA bundle")

	dir := t.TempDir()
	binary := extractBinary(t, pulled, dir)
	out, err := exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "teleop v0.0.0-test\n", string(out))

	runOperator(t, ctx, binary)
}

// runOperator runs the image's teleop as an operator (no Telegram token)
// and waits until it reconciles a TeleApp.
func runOperator(t *testing.T, ctx context.Context, binary string) {
	c := cluster.Shared(t)
	system, apps := c.Namespace(t, "image-sys-"), c.Namespace(t, "image-")
	cmd := exec.Command(binary, "run", "--kubeconfig", c.Kubeconfig, "--namespace", system, "--watch-namespace", apps,
		"--metrics-addr", "", "--health-addr", "")
	cmd.Env = []string{"HOME=/nonexistent"}
	log := logTo(t, cmd)

	tele := versioned.NewForConfigOrDie(c.RESTConfig())
	_, err := tele.TeleopV1alpha1().TeleApps(apps).Create(ctx, &v1alpha1.TeleApp{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       v1alpha1.TeleAppSpec{Image: "nginx:1.27"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	kube := kubernetes.NewForConfigOrDie(c.RESTConfig())
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		app, err := tele.TeleopV1alpha1().TeleApps(apps).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_, depErr := kube.AppsV1().Deployments(apps).Get(ctx, "web", metav1.GetOptions{})
		return depErr == nil && app.Status.Phase == v1alpha1.PhaseReady, nil
	})
	require.NoError(t, err, "the image's teleop did not reconcile the TeleApp; its log:\n%s", log())
}
