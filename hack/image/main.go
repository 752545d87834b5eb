// Command image builds teleop's OCI image without a Docker engine, with
// go-containerregistry as a library: a static teleop on a base this program
// makes itself (passwd and group with the nonroot user 65532, /tmp, /home/
// nonroot and the Mozilla CA bundle from golang.org/x/crypto/x509roots), user
// 65532:65532, entrypoint /teleop with cmd run, and the OCI labels. Given the
// same sources, version and -epoch it writes the same image, byte for byte.
//
//	go run ./hack/image -version v1.2.3 -revision $(git rev-parse HEAD) \
//	    -epoch $(git log -1 --format=%ct) -out bin/image [-repo registry/teleop]
//
// It writes an OCI image layout to -out and, when -repo (or IMAGE_REPO) is
// set, pushes the image as <repo>:<version>. `make image` runs it.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// nonroot is the user and group the image runs as (distroless' nonroot).
const nonroot = 65532

// options say what to build and where to put it.
type options struct {
	// root is the teleop module's directory.
	root string
	// version and revision go into the binary (teleop version) and the labels.
	version  string
	revision string
	source   string
	// epoch is every timestamp in the image: files, history, created.
	epoch time.Time
	arch  string
}

func main() {
	var (
		o     options
		epoch int64
		out   string
		repo  string
	)
	flag.StringVar(&o.root, "root", ".", "the teleop module's directory")
	flag.StringVar(&o.version, "version", "dev", "version: in `teleop version`, the tag and the labels")
	flag.StringVar(&o.revision, "revision", "", "source revision (git commit) for the labels")
	flag.StringVar(&o.source, "source", "https://github.com/teleop/teleop", "source repository for the labels")
	flag.Int64Var(&epoch, "epoch", 0, "Unix time of every timestamp in the image (SOURCE_DATE_EPOCH)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "CPU architecture")
	flag.StringVar(&out, "out", "bin/image", "directory of the OCI image layout written")
	flag.StringVar(&repo, "repo", os.Getenv("IMAGE_REPO"), "repository to push <repo>:<version> to; none when empty (IMAGE_REPO)")
	flag.Parse()
	o.epoch = time.Unix(epoch, 0).UTC()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, out, repo); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out, repo string) error {
	img, err := build(ctx, o)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	if err := writeLayout(out, img, o.version); err != nil {
		return err
	}
	fmt.Printf("wrote %s (OCI layout) %s\n", out, digest)
	if repo == "" {
		return nil
	}
	ref, err := push(ctx, img, repo, o.version)
	if err != nil {
		return err
	}
	fmt.Printf("pushed %s@%s\n", ref, digest)
	return nil
}

// build compiles teleop and assembles the image around it.
func build(ctx context.Context, o options) (v1.Image, error) {
	dir, err := os.MkdirTemp("", "teleop-image")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	binary, err := compile(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	return assemble(o, binary)
}

// compile builds a static, reproducible teleop: no cgo, no paths of this
// machine, no build ID.
func compile(ctx context.Context, o options, dir string) ([]byte, error) {
	out := filepath.Join(dir, "teleop")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -buildid= -X main.version="+o.version, "-o", out, "./cmd/teleop")
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch, "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build teleop: %w: %s", err, msg)
	}
	return os.ReadFile(out)
}

// assemble puts the base and the binary in two layers and writes the config.
func assemble(o options, binary []byte) (v1.Image, error) {
	base, err := tarLayer(baseFiles(), o.epoch)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	app, err := tarLayer([]file{{name: "teleop", mode: 0o755, data: binary}}, o.epoch)
	if err != nil {
		return nil, fmt.Errorf("teleop layer: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	created := v1.Time{Time: o.epoch}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "hack/image: passwd, group, /tmp, /home/nonroot, CA certificates"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "hack/image: /teleop (CGO_ENABLED=0 go build -trimpath)"}},
	)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = "linux", o.arch, created
	labels := labels(o)
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint: []string{"/teleop"},
		Cmd:        []string{"run"},
		WorkingDir: "/",
		Env:        []string{"PATH=/"},
		Labels:     labels,
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

func labels(o options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":    "teleop",
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
		"org.opencontainers.image.created":  o.epoch.Format(time.RFC3339),
	}
}

// file is one entry of a layer; a name ending in / is a directory.
type file struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

// baseFiles is the minimal base: enough for a static Go binary that runs as
// nonroot, writes to /tmp and speaks TLS.
func baseFiles() []file {
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot))},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot))},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle()},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot, gid: nonroot},
		{name: "tmp/", mode: 0o1777},
	}
}

// caBundle is the Mozilla root store as PEM, from the Go module proxy (so
// the image does not depend on this machine's certificates). Roots with a
// distrust-after date are left out: a PEM file cannot say that constraint.
func caBundle() []byte {
	var b bytes.Buffer
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}) // a bytes.Buffer does not fail
	}
	return b.Bytes()
}

// tarLayer makes an uncompressed tar of files, every entry stamped with
// epoch, owned by root unless said otherwise, as a gzip OCI layer.
func tarLayer(files []file, epoch time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: epoch, Format: tar.FormatPAX}
		if f.name[len(f.name)-1] == '/' {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// writeLayout replaces dir with an OCI image layout holding img, named version.
func writeLayout(dir string, img v1.Image, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	path, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if err := path.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": version})); err != nil {
		return fmt.Errorf("write the image to %s: %w", dir, err)
	}
	return nil
}

// badTagChars are what a version may hold and a tag may not.
var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// push sends img to repo, tagged with version; a loopback registry is
// spoken to over plain HTTP, any other with the credentials of
// ~/.docker/config.json.
func push(ctx context.Context, img v1.Image, repo, version string) (name.Tag, error) {
	tag, err := name.NewTag(repo + ":" + badTagChars.ReplaceAllString(version, "-"))
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference %s: %w", repo, err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return name.Tag{}, fmt.Errorf("push %s: %w", tag, err)
	}
	return tag, nil
}
