package bot

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the transport's traffic. A nil *Metrics counts nothing.
type Metrics struct {
	updates   prometheus.Counter
	sent      prometheus.Counter
	throttles prometheus.Counter
	depth     prometheus.Gauge
}

// NewMetrics registers the transport's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teleop_telegram_updates_received_total",
			Help: "Telegram updates received and handed to the command engine.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teleop_telegram_messages_sent_total",
			Help: "Messages and edits delivered to Telegram (each coalesced message counted).",
		}),
		throttles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teleop_telegram_flood_waits_total",
			Help: "429 Too Many Requests answers received from Telegram.",
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "teleop_telegram_outbox_depth",
			Help: "Messages and edits queued for sending.",
		}),
	}
	reg.MustRegister(m.updates, m.sent, m.throttles, m.depth)
	return m
}

func (m *Metrics) updateReceived() {
	if m != nil {
		m.updates.Inc()
	}
}

func (m *Metrics) sentMessages(n int) {
	if m != nil {
		m.sent.Add(float64(n))
	}
}

func (m *Metrics) throttled() {
	if m != nil {
		m.throttles.Inc()
	}
}

func (m *Metrics) outboxAdd(n int) {
	if m != nil {
		m.depth.Add(float64(n))
	}
}
