package commands

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the commands the Router answered, by command and by what
// the grammar made of them. A nil *Metrics counts nothing.
type Metrics struct {
	commands *prometheus.CounterVec
}

// NewMetrics creates the command metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{commands: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teleop_commands_total",
		Help: "Chat commands by command and result (matched, bad_usage, unknown).",
	}, []string{"command", "result"})}
	reg.MustRegister(m.commands)
	return m
}

// count records one command. Unknown words are counted under "unknown" so a
// chat cannot grow the label set.
func (m *Metrics) count(word string, o outcome) {
	if m == nil {
		return
	}
	result := "matched"
	switch o {
	case badUsage:
		result = "bad_usage"
	case unknownCommand:
		word, result = "unknown", "unknown"
	}
	m.commands.WithLabelValues(word, result).Inc()
}
