package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushPauseImage builds test/cluster/pause (a static binary) into a one-layer
// image and pushes it to registry (host:port, plain HTTP on loopback) as
// <registry>/pause:teleop. It returns the reference, the real node's
// sandbox image: nothing can be pulled from the internet here.
func PushPauseImage(ctx context.Context, registry string) (string, error) {
	dir, err := os.MkdirTemp("", "teleop-pause-")
	if err != nil {
		return "", fmt.Errorf("build the pause image: %w", err)
	}
	defer os.RemoveAll(dir)
	binary := filepath.Join(dir, "pause")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", binary, "./test/cluster/pause")
	build.Dir = RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build the pause binary: %w: %s", err, out)
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("read the pause binary: %w", err)
	}
	img, err := singleFileImage("pause", data)
	if err != nil {
		return "", fmt.Errorf("assemble the pause image: %w", err)
	}
	ref := registry + "/pause:teleop"
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("pause image reference %s: %w", ref, err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return ref, nil
}

// singleFileImage is an image of one executable at /<file>, its entrypoint.
func singleFileImage(file string, data []byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerData := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerData)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = []string{"/" + file}
	return mutate.ConfigFile(img, cfg)
}
