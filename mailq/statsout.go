package mailq

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/relaymail/relay/metrics"
)

// WriteText writes the statistics as tables for a human.
func (st *Stats) WriteText(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "%-9s %9s %12s %9s", "STATE", "MESSAGES", "BYTES", "OLDEST")
	for _, l := range AgeLabels {
		fmt.Fprintf(w, " %7s", l)
	}
	w.WriteString("\n")
	for _, name := range States {
		s := st.States[name]
		if s.Unknown {
			fmt.Fprintf(w, "%-9s %9s (not readable: root and the relay user only)\n", name, "?")
			continue
		}
		fmt.Fprintf(w, "%-9s %9d %12d %9s", name, s.Messages, s.Bytes, shortAge(s.OldestAge))
		for _, n := range s.Ages {
			fmt.Fprintf(w, " %7d", n)
		}
		w.WriteString("\n")
	}
	if len(st.Smarthosts) > 0 {
		fmt.Fprintf(w, "\n%-30s %9s %12s %6s  %s\n", "SMARTHOST", "MESSAGES", "BYTES", "RATE", "STATE")
		for _, h := range st.Smarthosts {
			state := "up"
			if h.Unknown {
				state = "? (the runners' memory is readable by root and relay only)"
			} else if !h.Up {
				state = fmt.Sprintf("down until %s (%d failed connections in a row)", time.Unix(h.DownUntil, 0).Local().Format(time.RFC3339), h.ConsecutiveFailures)
			}
			fmt.Fprintf(w, "%-30s %9d %12d %6d  %s\n", h.Name, h.Messages, h.Bytes, h.RateLimited, state)
		}
	}
	if st.NoRoute > 0 {
		fmt.Fprintf(w, "%-30s %9d\n", "(no smarthost serves)", st.NoRoute)
	}
	if len(st.Domains) > 0 {
		fmt.Fprintf(w, "\n%-30s %9s %11s\n", "RECIPIENT DOMAIN", "MESSAGES", "RECIPIENTS")
		for _, d := range st.Domains {
			fmt.Fprintf(w, "%-30s %9d %11d\n", d.Domain, d.Messages, d.Recipients)
		}
	}
	if st.Unreadable > 0 {
		fmt.Fprintf(w, "\n%d queue file(s) could not be read\n", st.Unreadable)
	}
	return w.Flush()
}

// shortAge writes seconds as the largest whole unit: 45s, 12m, 3h, 2d.
func shortAge(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case sec == 0:
		return "-"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

// WriteJSON writes the statistics as one JSON object.
func (st *Stats) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// WritePrometheus writes the statistics in Prometheus' text format, the
// families listed in docs/relay-metrics.7.md; timestamp adds
// relay_queue_stats_timestamp_seconds (the textfile, whose age tells a
// stale cron job; the daemon's scrape has no need of it).
func (st *Stats) WritePrometheus(w *metrics.Writer, timestamp bool) {
	known := func(yield func(string, *StateStats) bool) {
		for _, name := range States {
			if s := st.States[name]; !s.Unknown && !yield(name, s) {
				return
			}
		}
	}
	w.Family("relay_queue_messages", "Messages in the queue by state: incoming (never tried), deferred, held, corrupt (files moved aside to corrupt/).", metrics.Gauge)
	for name, s := range known {
		w.Sample("relay_queue_messages", []string{"state", name}, float64(s.Messages))
	}
	w.Family("relay_queue_bytes", "Size of the queue files by state (the messages and their arrival envelopes), in bytes.", metrics.Gauge)
	for name, s := range known {
		w.Sample("relay_queue_bytes", []string{"state", name}, float64(s.Bytes))
	}
	w.Family("relay_queue_oldest_message_age_seconds", "Age of the oldest message by state (0 when the state is empty).", metrics.Gauge)
	for name, s := range known {
		w.Sample("relay_queue_oldest_message_age_seconds", []string{"state", name}, s.OldestAge)
	}
	w.Family("relay_queue_messages_by_age", "Messages by state and age, in the buckets of Postfix's qshape (0-5m up to 160m+).", metrics.Gauge)
	for name, s := range known {
		for i, n := range s.Ages {
			w.Sample("relay_queue_messages_by_age", []string{"state", name, "age", AgeLabels[i]}, float64(n))
		}
	}
	if len(st.Smarthosts) > 0 {
		w.Family("relay_queue_smarthost_messages", "Queued messages with a recipient this smarthost is tried first for (a message split between smarthosts counts under each; one sent with sendmail -a under that one).", metrics.Gauge)
		for _, h := range st.Smarthosts {
			w.Sample("relay_queue_smarthost_messages", []string{"smarthost", h.Name}, float64(h.Messages))
		}
		w.Family("relay_queue_rate_limited_messages", "Queued messages waiting for the rate limit of this smarthost.", metrics.Gauge)
		for _, h := range st.Smarthosts {
			w.Sample("relay_queue_rate_limited_messages", []string{"smarthost", h.Name}, float64(h.RateLimited))
		}
		w.Family("relay_smarthost_up", "1 unless the runners remember the smarthost as down after a failed connection (0 until its next retry).", metrics.Gauge)
		for _, h := range st.Smarthosts {
			if h.Unknown {
				continue
			}
			up := 0.0
			if h.Up {
				up = 1
			}
			w.Sample("relay_smarthost_up", []string{"smarthost", h.Name}, up)
		}
	}
	w.Family("relay_queue_no_route_messages", "Queued messages with a recipient no smarthost serves.", metrics.Gauge)
	w.Sample("relay_queue_no_route_messages", nil, float64(st.NoRoute))
	w.Family("relay_queue_unreadable_messages", "Queue files that could not be read at the last count.", metrics.Gauge)
	w.Sample("relay_queue_unreadable_messages", nil, float64(st.Unreadable))
	if len(st.Domains) > 0 {
		w.Family("relay_queue_domain_messages", "Queued messages with pending recipients in this domain (the domains with the most).", metrics.Gauge)
		for _, d := range st.Domains {
			w.Sample("relay_queue_domain_messages", []string{"domain", d.Domain}, float64(d.Messages))
		}
	}
	if timestamp {
		w.Family("relay_queue_stats_timestamp_seconds", "When relay queue stats counted the queue, Unix time.", metrics.Gauge)
		w.Sample("relay_queue_stats_timestamp_seconds", nil, float64(st.Time))
	}
}
