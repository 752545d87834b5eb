package bot

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the transport's traffic. A nil *Metrics counts nothing.
type Metrics struct {
	updates   prometheus.Counter
	sent      prometheus.Counter
	throttles prometheus.Counter
	depth     prometheus.Gauge
	dropped   prometheus.Counter
	evicted   prometheus.Counter
	pending   prometheus.Gauge
	saves     *prometheus.CounterVec
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
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teleop_telegram_edits_superseded_total",
			Help: "Queued edits dropped because a newer edit of the same message replaced them.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teleop_telegram_updates_dropped_total",
			Help: "Accepted updates dropped unhandled to keep a bound (a chat's backlog).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "teleop_telegram_updates_pending",
			Help: "Updates accepted and not started yet.",
		}),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teleop_telegram_checkpoint_saves_total",
			Help: "Saves of the update checkpoint, by result (ok, failed).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.updates, m.sent, m.throttles, m.depth, m.dropped, m.evicted, m.pending, m.saves)
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

func (m *Metrics) superseded() {
	if m != nil {
		m.dropped.Inc()
	}
}

func (m *Metrics) updateDropped() {
	if m != nil {
		m.evicted.Inc()
	}
}

func (m *Metrics) pendingAdd(n int) {
	if m != nil {
		m.pending.Add(float64(n))
	}
}

func (m *Metrics) checkpointSaved(ok bool) {
	if m != nil {
		result := "ok"
		if !ok {
			result = "failed"
		}
		m.saves.WithLabelValues(result).Inc()
	}
}
