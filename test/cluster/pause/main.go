// Command pause is the real node's sandbox (pause) image's only program: it
// holds a pod's namespaces open until it is told to stop. Pulling
// registry.k8s.io/pause is impossible here, so the test plane builds this
// and pushes it to its loopback registry (cluster.PushPauseImage).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			return
		}
		// As PID 1 of a pod sharing its PID namespace, reap orphans.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
