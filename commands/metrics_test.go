package commands

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
)

func TestMetricsCountCommandsWithoutGrowingLabels(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	g := newGrammar(allCommands...)
	for _, text := range []string{"/list", "/list", "/scale web", "/frobnicate", "/x1", "hello"} {
		p := g.parse(text, "teleop_bot")
		if p.outcome != notCommand {
			m.count(p.word, p.outcome)
		}
	}
	assert.Equal(t, 2.0, testutil.ToFloat64(m.commands.WithLabelValues("list", "matched")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.commands.WithLabelValues("scale", "bad_usage")))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.commands.WithLabelValues("unknown", "unknown")), "unknown words share one label")
	assert.Equal(t, 3, testutil.CollectAndCount(m.commands))
}
