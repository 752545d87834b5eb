// Command etcd is etcd v3.6 built from the Go module proxy. Debian's 3.4 cannot
// serve the watch-list requests kube-apiserver 1.36 makes.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
