package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/test/benchkit"
)

const mib = 1 << 20

// spread is the median and the range of a set of figures.
type spread struct{ median, low, high float64 }

func spreadOf(xs []float64) spread {
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	median := s[m]
	if len(s)%2 == 0 {
		median = (s[m-1] + s[m]) / 2
	}
	return spread{median: median, low: s[0], high: s[len(s)-1]}
}

func (s spread) String() string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.median, s.low, s.high)
}

// ratios is teleop's time over the floor's, pair by pair.
func ratios(floors, teleops []side, of func(side) time.Duration) spread {
	rs := make([]float64, len(floors))
	for i := range floors {
		rs[i] = of(teleops[i]).Seconds() / of(floors[i]).Seconds()
	}
	return spreadOf(rs)
}

// perApp sums a phase's writes and divides by n, with the breakdown.
func perApp(writes map[string]int, n int) (float64, string) {
	total := 0
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(writes)) {
		total += writes[k]
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(writes[k])/float64(n)))
	}
	return float64(total) / float64(n), strings.Join(parts, ", ")
}

func report(b *testing.B, n int, budget benchkit.Budget, floors, teleops []side, costs []teleopCost) {
	createReady := ratios(floors, teleops, func(s side) time.Duration { return s.create.ready })
	scaleReady := ratios(floors, teleops, func(s side) time.Duration { return s.scale.ready })
	b.ReportMetric(createReady.median, "ready-ratio")
	b.ReportMetric(scaleReady.median, "scale-ratio")
	var peaks, restartPeaks, restartRight, cpu []float64
	storm := 0
	for _, c := range costs {
		peaks = append(peaks, float64(c.peak.PeakRSS)/mib)
		restartPeaks = append(restartPeaks, float64(c.restart.peak.PeakRSS)/mib)
		restartRight = append(restartRight, c.restart.allRight.Seconds())
		cpu = append(cpu, c.cpu.Seconds())
		storm += c.restart.storm
	}
	b.ReportMetric(spreadOf(peaks).high, "peak-RSS-MiB")
	b.ReportMetric(spreadOf(restartRight).high, "restart-right-s")
	b.ReportMetric(float64(storm), "restart-status-writes-to-unchanged")

	b.Logf("%d apps, %d floor/teleop pairs interleaved; both sides write with %d writers and teleop's client budget: %d clients, %.0f QPS and burst %d in all",
		n, len(floors), operator.DefaultWorkers, budget.Clients, budget.QPS, budget.Burst)
	b.Logf("run        create: sent / Deployments right / all ready      scale: sent / right / all ready")
	for i := range floors {
		for _, r := range []struct {
			name string
			s    side
		}{{"floor", floors[i]}, {"teleop", teleops[i]}} {
			b.Logf("%-6s %d   %6.1fs / %6.1fs / %6.1fs                %6.1fs / %6.1fs / %6.1fs", r.name, i,
				r.s.create.sent.Seconds(), r.s.create.right.Seconds(), r.s.create.ready.Seconds(),
				r.s.scale.sent.Seconds(), r.s.scale.right.Seconds(), r.s.scale.ready.Seconds())
		}
	}
	b.Logf("median ratio teleop/floor (spread): create→all ready %v; scale→all ready %v", createReady, scaleReady)
	for i, c := range costs {
		createW, createParts := perApp(teleops[i].create.writes, n)
		scaleW, scaleParts := perApp(teleops[i].scale.writes, n)
		floorScaleW, _ := perApp(floors[i].scale.writes, n)
		b.Logf("teleop %d: peak RSS %.1f MiB, CPU %.1fs over both phases (%.1f ms/app)", i, float64(c.peak.PeakRSS)/mib, c.cpu.Seconds(), c.cpu.Seconds()*1000/float64(2*n))
		b.Logf("teleop %d: writes per app on create %.2f (%s)", i, createW, createParts)
		b.Logf("teleop %d: writes per app on scale %.2f (%s); the floor's %.2f", i, scaleW, scaleParts, floorScaleW)
		b.Logf("teleop %d: %s", i, c.restart.describe(n))
	}
	b.Logf("teleop CPU (s) %v; peak RSS (MiB) %v; after restart %v", spreadOf(cpu), spreadOf(peaks), spreadOf(restartPeaks))
}

func TestSpreadOfTakesTheMedianAndTheRange(t *testing.T) {
	tests := map[string]struct {
		xs   []float64
		want spread
	}{
		"odd count":  {xs: []float64{1.4, 1.1, 2.0}, want: spread{median: 1.4, low: 1.1, high: 2.0}},
		"even count": {xs: []float64{3, 1, 2, 4}, want: spread{median: 2.5, low: 1, high: 4}},
		"one":        {xs: []float64{1.2}, want: spread{median: 1.2, low: 1.2, high: 1.2}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, spreadOf(tt.xs))
		})
	}
}
