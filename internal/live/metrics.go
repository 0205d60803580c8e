package live

import "github.com/prometheus/client_golang/prometheus"

// metrics are the hub's gauges and counters.
type metrics struct {
	open   *prometheus.GaugeVec     // open streams by kind
	closed *prometheus.CounterVec   // streams the server ended, by kind and reason
	lag    *prometheus.HistogramVec // from the source learning of a message to its write
	notes  prometheus.Counter       // notifications received
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switchboard_live_streams",
			Help: "Open WebSocket streams by kind."}, []string{"kind"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_live_streams_closed_total",
			Help: "Streams the server closed, by kind and reason (unauthenticated, forbidden, too_slow, no_pong, failed)."}, []string{"kind", "reason"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_live_lag_seconds",
			Help:    "Time from a source learning of a message to its write to the client.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"kind"}),
		notes: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_live_notifications_total",
			Help: "PostgreSQL notifications the hub received (rights changes and published messages)."}),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.closed, m.lag, m.notes)
	}
	return m
}
