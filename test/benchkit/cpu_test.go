package benchkit

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCPU(t *testing.T) {
	tests := map[string]struct {
		stat    string
		want    time.Duration
		wantErr string
	}{
		"user and system ticks add up": {
			stat: "4242 (teleop) S 1 4242 4242 0 -1 4194560 5000 0 0 0 150 25 0 0 20 0 12 0 100 1000000 5000",
			want: 1750 * time.Millisecond,
		},
		"a command name with spaces and parentheses": {
			stat: "7 (python3 (kopf) x) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1",
			want: 70 * time.Millisecond,
		},
		"too few fields": {
			stat:    "7 (sh) R 1 7",
			wantErr: "only 3 fields",
		},
		"no command name": {
			stat:    "7 sh R",
			wantErr: "no command name",
		},
		"a tick count that is not a number": {
			stat:    "7 (sh) R 1 7 7 0 -1 0 0 0 0 0 x 4 0",
			wantErr: "parse field 14",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseCPU(tt.stat)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadCPUOfThisProcessGrowsWithWork(t *testing.T) {
	before, err := ReadCPU(os.Getpid())
	require.NoError(t, err)
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
	}
	after, err := ReadCPU(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, after, before)
}

func TestReadCPUOfNoProcess(t *testing.T) {
	_, err := ReadCPU(-1)
	require.ErrorContains(t, err, "read process stat")
}
