package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Registry starts the CNCF distribution registry (make registry-bin) on a
// free loopback port for the test and returns its host:port. It speaks plain
// HTTP, which go-containerregistry and containerd use for loopback hosts.
func Registry(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(BinDir(), "registry")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the registry is built by `make registry-bin` (part of make test): %v", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	dir := t.TempDir()
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{name: "registry", path: bin, args: []string{"serve", filepath.Join(dir, "config.yml")}, logPath: filepath.Join(dir, "registry.log")}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.waitHealthy(ctx, httpCheck(http.DefaultClient, "http://"+addr+"/v2/", "")); err != nil {
		t.Fatal(err)
	}
	return addr
}
