package benchkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture Go runs on.
const clockTick = 10 * time.Millisecond

// ReadCPU reads the user and system CPU time process pid has used so far,
// from /proc/<pid>/stat.
func ReadCPU(pid int) (time.Duration, error) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}
	cpu, err := ParseCPU(string(data))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return cpu, nil
}

// ParseCPU returns utime + stime of the text of a /proc/<pid>/stat file.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from its closing parenthesis: utime and stime are fields 14 and 15.
func ParseCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	fields := strings.Fields(stat[end+1:]) // fields[0] is field 3, the state
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("only %d fields after the command name", len(fields))
	}
	var ticks int64
	for _, i := range []int{utime, stime} {
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse field %d: %w", i+3, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
