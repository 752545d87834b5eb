package benchkit

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMemory(t *testing.T) {
	tests := map[string]struct {
		status  string
		want    Memory
		wantErr string
	}{
		"peak and current resident set in bytes": {
			status: "Name:\toperator\nVmPeak:\t 1300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t12\n",
			want:   Memory{PeakRSS: 50 << 20, RSS: 40 << 20},
		},
		"lines of another shape are passed over": {
			status: "Name:\tkthreadd\nState:\tS (sleeping)\nSigQ:\t0/31413\n",
			want:   Memory{},
		},
		"a number that is not one is an error": {
			status:  "VmHWM:\t12x4 kB\n",
			wantErr: `parse "VmHWM:\t12x4 kB"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseMemory(strings.NewReader(tt.status))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, m.RSS)
	assert.GreaterOrEqual(t, m.PeakRSS, m.RSS)
}

func TestReadMemoryOfNoProcess(t *testing.T) {
	_, err := ReadMemory(-1)
	require.ErrorContains(t, err, "read process status")
}
