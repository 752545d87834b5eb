package benchkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Memory is what the kernel reports for a process's resident set.
type Memory struct {
	PeakRSS int64 // VmHWM, bytes
	RSS     int64 // VmRSS, bytes
}

// ReadMemory reads the memory of process pid from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "status")
	f, err := os.Open(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read process status: %w", err)
	}
	defer f.Close()
	m, err := ParseMemory(f)
	if err != nil {
		return Memory{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMemory reads VmHWM and VmRSS from the text of a /proc/<pid>/status
// file; lines other than "<name>: <number> kB" are passed over.
func ParseMemory(status io.Reader) (Memory, error) {
	var m Memory
	scanner := bufio.NewScanner(status)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parse %q: %w", scanner.Text(), err)
		}
		switch fields[0] {
		case "VmHWM:":
			m.PeakRSS = kb << 10
		case "VmRSS:":
			m.RSS = kb << 10
		}
	}
	return m, scanner.Err()
}
