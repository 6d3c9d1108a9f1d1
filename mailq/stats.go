package mailq

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/route"
	"github.com/relaymail/relay/spool"
)

// States are the queue states relay queue stats counts, in its order:
// incoming (never tried), deferred (tried, waiting for the next
// attempt), held (on hold until released) and corrupt (files moved
// aside to corrupt/ for a human). A message being delivered counts in
// the state it had when the attempt began.
var States = []string{"incoming", "deferred", "held", "corrupt"}

// AgeBuckets are the upper bounds of the age buckets, as Postfix's qshape
// draws them: 0-5m, 5-10m, 10-20m, 20-40m, 40-80m, 80-160m, then 160m+.
var AgeBuckets = []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute, 160 * time.Minute}

// AgeLabels name the buckets of AgeBuckets and the last, unbounded one.
var AgeLabels = []string{"0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160m+"}

// StateStats counts one queue state.
type StateStats struct {
	Messages int `json:"messages"`
	// Bytes is the size of the queue files: the messages and their
	// arrival envelopes (the disk the state takes, envelope files aside).
	Bytes int64 `json:"bytes"`
	// OldestAge is the age of the oldest message in seconds (0 when
	// there is none); for corrupt, the age of the newest change of the
	// oldest file.
	OldestAge float64 `json:"oldest_age_seconds"`
	// Ages counts the messages per AgeLabels bucket, in that order.
	Ages []int `json:"ages"`
	// Unknown: the state could not be read (corrupt/ is readable by root
	// and relay only); its numbers are zero.
	Unknown bool `json:"unknown,omitempty"`
}

// DomainStats counts the messages with pending recipients in a domain.
type DomainStats struct {
	Domain     string `json:"domain"`
	Messages   int    `json:"messages"`
	Recipients int    `json:"recipients"`
}

// SmarthostStats is one [[smarthost]]: the messages routed to it first
// (see routeOf: a message split by recipients counts under each of its
// smarthosts, one sent with sendmail -a under that one) and whether the
// runners remember it as down.
type SmarthostStats struct {
	Name     string `json:"name"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
	// RateLimited counts the messages waiting for its rate limit.
	RateLimited int  `json:"rate_limited"`
	Up          bool `json:"up"`
	// Unknown: the runners' memory of the smarthost could not be read
	// (it is the spool owner's alone); Up says nothing then.
	Unknown bool `json:"unknown,omitempty"`
	// DownUntil is when the next connection is tried (Unix time; 0 when up).
	DownUntil int64 `json:"down_until,omitempty"`
	// ConsecutiveFailures counts the failed connections in a row.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
}

// Stats is what relay queue stats reports; see docs/relay.8.md.
type Stats struct {
	Time       int64                  `json:"time"` // when taken, Unix time
	States     map[string]*StateStats `json:"states"`
	Domains    []DomainStats          `json:"domains"`
	Smarthosts []SmarthostStats       `json:"smarthosts"`
	// NoRoute counts the messages with a recipient no smarthost serves
	// (or whose sendmail -a smarthost is not configured for the sender).
	NoRoute int `json:"no_route"`
	// Unreadable counts queue files that could not be read (reported on
	// the warning writer, and moved aside by the next runner).
	Unreadable int `json:"unreadable"`
}

// ageBucket returns the index in AgeLabels of an age.
func ageBucket(age time.Duration) int {
	for i, b := range AgeBuckets {
		if age < b {
			return i
		}
	}
	return len(AgeBuckets)
}

func newStats(now time.Time) *Stats {
	st := &Stats{Time: now.Unix(), States: map[string]*StateStats{}}
	for _, s := range States {
		st.States[s] = &StateStats{Ages: make([]int, len(AgeLabels))}
	}
	return st
}

func (s *StateStats) add(size int64, age time.Duration) {
	s.Messages++
	s.Bytes += size
	s.Ages[ageBucket(age)]++
	s.OldestAge = max(s.OldestAge, max(age, 0).Seconds())
}

// stateOf is the state a message is counted in.
func stateOf(e *spool.Summary) string {
	switch {
	case e.Held:
		return "held"
	case e.Attempts > 0:
		return "deferred"
	}
	return "incoming"
}

// domainOf is the lower-cased domain of an address ("" for none).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// CollectStats counts the queue of sp (nil: an empty queue) as the
// configuration routes it, keeping the domains with the most messages
// (topDomains; 0 keeps none, a negative number all). It reads envelopes
// only, never a message body, so it works with the relay group's read
// access; corrupt/ is counted only where it can be read.
func CollectStats(cfg *config.Config, sp *spool.Spool, topDomains int, now time.Time, warn func(error)) (*Stats, error) {
	st := newStats(now)
	hosts := map[string]*SmarthostStats{}
	for i := range cfg.Smarthosts {
		sh := &cfg.Smarthosts[i]
		h := &SmarthostStats{Name: sh.Name, Up: true}
		if sp != nil {
			hs, err := sp.ReadHost(sh.Name)
			switch {
			case err != nil:
				h.Unknown = true
			case now.Before(hs.DownUntil):
				h.Up, h.DownUntil, h.ConsecutiveFailures = false, hs.DownUntil.Unix(), hs.Failures
			}
		}
		hosts[sh.Name] = h
		st.Smarthosts = append(st.Smarthosts, *h)
	}
	if sp == nil {
		return st, nil
	}
	domains := map[string]*DomainStats{}
	routes := map[string]string{} // sender → first smarthost ("" none)
	byRecipient := false          // a smarthost has recipients patterns
	for _, sh := range cfg.Smarthosts {
		byRecipient = byRecipient || len(sh.Recipients) > 0
	}
	err := sp.ScanSummaries(func(id string, m *spool.Summary, err error) error {
		if err != nil {
			st.Unreadable++
			if warn != nil {
				warn(err)
			}
			return nil
		}
		st.States[stateOf(m)].add(m.FileSize, now.Sub(m.Arrival))
		var seen []string // a message's domains: a few
		for _, r := range m.Recipients {
			if r.Status != spool.Pending {
				continue
			}
			d := domainOf(r.Address)
			ds := domains[d]
			if ds == nil {
				ds = &DomainStats{Domain: d}
				domains[d] = ds
			}
			ds.Recipients++
			if !slices.Contains(seen, d) {
				seen = append(seen, d)
				ds.Messages++
			}
		}
		names := routeOf(cfg, m, routes, byRecipient)
		noRoute := false
		for _, name := range names {
			if h := hosts[name]; h != nil {
				h.Messages++
				h.Bytes += m.FileSize
			} else {
				noRoute = true
			}
		}
		if noRoute {
			st.NoRoute++
		}
		if w := m.RateWait; w != nil && w.Until.After(now) {
			if h := hosts[w.Smarthost]; h != nil {
				h.RateLimited++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range st.Smarthosts {
		st.Smarthosts[i] = *hosts[st.Smarthosts[i].Name]
	}
	for _, d := range domains {
		st.Domains = append(st.Domains, *d)
	}
	slices.SortFunc(st.Domains, func(a, b DomainStats) int {
		return cmp.Or(cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Domain, b.Domain))
	})
	if topDomains >= 0 && len(st.Domains) > topDomains {
		st.Domains = st.Domains[:topDomains]
	}
	countCorrupt(sp, st.States["corrupt"], now)
	return st, nil
}

// routeOf names the smarthosts a message is counted under, as the
// runners route it (package relay, split.go): the one sendmail -a named
// (when its senders allow the sender; else none), else the first
// smarthost of each pending recipient (route.Recipient: a message split
// between smarthosts counts under each of them), else — only failures to
// report — the first of the sender's route. "" stands for no smarthost.
// The sender's route is cached per sender; routes by recipient are
// looked up only when some smarthost has recipients patterns.
func routeOf(cfg *config.Config, m *spool.Summary, routes map[string]string, byRecipient bool) []string {
	first := func(shs []*config.Smarthost) string {
		if len(shs) == 0 {
			return ""
		}
		return shs[0].Name
	}
	if m.Smarthost != "" {
		name := ""
		if sh := route.Pinned(cfg, m.Smarthost, m.Sender); sh != nil {
			name = sh.Name
		}
		return []string{name}
	}
	senderRoute := func() string {
		name, ok := routes[m.Sender]
		if !ok {
			name = first(route.Route(cfg, m.Sender))
			routes[m.Sender] = name
		}
		return name
	}
	if !byRecipient {
		return []string{senderRoute()}
	}
	var names []string
	for _, r := range m.Recipients {
		if r.Status != spool.Pending {
			continue
		}
		if name := first(route.Recipient(cfg, m.Sender, r.Address)); !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return []string{senderRoute()}
	}
	return names
}

// countCorrupt counts the files in corrupt/, by their modification time.
func countCorrupt(sp *spool.Spool, s *StateStats, now time.Time) {
	dir, _ := sp.Corrupt()
	entries, err := os.ReadDir(dir)
	if err != nil {
		s.Unknown = !os.IsNotExist(err)
		return
	}
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		s.add(fi.Size(), now.Sub(fi.ModTime()))
	}
}
