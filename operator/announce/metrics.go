package announce

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the announcer gave up on. A nil *Metrics counts nothing.
type Metrics struct {
	undeliveredDeletions prometheus.Counter
}

// NewMetrics creates the announcer's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		undeliveredDeletions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "teleop_deletion_notices_undelivered_total",
			Help: "Deletion notices (one per chat) not delivered within --deletion-notice-timeout; the TeleApp was let go without them.",
		}),
	}
	reg.MustRegister(m.undeliveredDeletions)
	return m
}

func (m *Metrics) deletionNoticesAbandoned(chats int) {
	if m == nil {
		return
	}
	m.undeliveredDeletions.Add(float64(chats))
}
