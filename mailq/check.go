package mailq

import (
	"fmt"
	"strings"
	"time"
)

// Monitoring-plugin states (the exit codes of relay queue check, as
// monitoring-plugins, Nagios, Icinga, NRPE and Zabbix read them): the one
// command of relay whose exit codes are not sysexits.
const (
	CheckOK       = 0
	CheckWarning  = 1
	CheckCritical = 2
	CheckUnknown  = 3
)

var checkNames = []string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// CheckLimits are the thresholds of relay queue check. An age or count
// of 0 is no threshold. Waiting mail is incoming and deferred mail; held
// mail and corrupt files have their own levels.
type CheckLimits struct {
	WarnAge, CritAge     time.Duration
	WarnCount, CritCount int
	// Held and Corrupt are the states one held message, one corrupt
	// file make (CheckOK: ignored).
	Held, Corrupt int
}

// DefaultCheckLimits: mail waiting over 30 minutes is a warning, over 2
// hours critical; 10 waiting messages a warning, 100 critical; held mail
// is critical (it waits for a human), a corrupt file a warning.
var DefaultCheckLimits = CheckLimits{
	WarnAge: 30 * time.Minute, CritAge: 2 * time.Hour,
	WarnCount: 10, CritCount: 100,
	Held: CheckCritical, Corrupt: CheckWarning,
}

// Check judges st by the limits: the state (CheckOK…CheckCritical) and
// the one line the monitoring plugin prints, with performance data.
func Check(st *Stats, lim CheckLimits) (int, string) {
	in, def, held, cor := st.States["incoming"], st.States["deferred"], st.States["held"], st.States["corrupt"]
	waiting := in.Messages + def.Messages
	oldest := time.Duration(max(in.OldestAge, def.OldestAge) * float64(time.Second))
	state := CheckOK
	var why []string
	raise := func(s int, reason string) {
		state = max(state, s)
		if s > CheckOK {
			why = append(why, reason)
		}
	}
	switch {
	case lim.CritCount > 0 && waiting >= lim.CritCount:
		raise(CheckCritical, fmt.Sprintf("%d messages waiting (critical at %d)", waiting, lim.CritCount))
	case lim.WarnCount > 0 && waiting >= lim.WarnCount:
		raise(CheckWarning, fmt.Sprintf("%d messages waiting (warning at %d)", waiting, lim.WarnCount))
	}
	switch {
	case lim.CritAge > 0 && waiting > 0 && oldest >= lim.CritAge:
		raise(CheckCritical, fmt.Sprintf("oldest waiting %s (critical at %s)", oldest.Round(time.Second), lim.CritAge))
	case lim.WarnAge > 0 && waiting > 0 && oldest >= lim.WarnAge:
		raise(CheckWarning, fmt.Sprintf("oldest waiting %s (warning at %s)", oldest.Round(time.Second), lim.WarnAge))
	}
	if held.Messages > 0 {
		raise(lim.Held, fmt.Sprintf("%d held (relay queue list shows why; release with relay queue release)", held.Messages))
	}
	if cor.Unknown {
		raise(min(lim.Corrupt, CheckWarning), "corrupt/ not readable (run the check as root or relay)")
	} else if cor.Messages > 0 {
		raise(lim.Corrupt, fmt.Sprintf("%d corrupt file(s) in the spool's corrupt/", cor.Messages))
	}
	for _, h := range st.Smarthosts {
		if !h.Up && !h.Unknown && waiting > 0 {
			raise(CheckWarning, fmt.Sprintf("smarthost %s down", h.Name))
		}
	}
	text := fmt.Sprintf("%d waiting, %d held", waiting, held.Messages)
	if waiting > 0 {
		text += fmt.Sprintf(", oldest %s", oldest.Round(time.Second))
	}
	if len(why) > 0 {
		text = strings.Join(why, "; ")
	}
	perf := []string{
		perfData("waiting", float64(waiting), "", float64(lim.WarnCount), float64(lim.CritCount)),
		perfData("oldest_age", oldest.Seconds(), "s", lim.WarnAge.Seconds(), lim.CritAge.Seconds()),
		perfData("incoming", float64(in.Messages), "", 0, 0),
		perfData("deferred", float64(def.Messages), "", 0, 0),
		perfData("held", float64(held.Messages), "", 0, 0),
		perfData("bytes", float64(in.Bytes+def.Bytes+held.Bytes), "B", 0, 0),
	}
	if !cor.Unknown {
		perf = append(perf, perfData("corrupt", float64(cor.Messages), "", 0, 0))
	}
	return state, fmt.Sprintf("RELAY QUEUE %s: %s | %s", checkNames[state], text, strings.Join(perf, " "))
}

// perfData is one item of performance data as the monitoring-plugins
// guidelines write it: label=value[UOM];warn;crit;min (0 thresholds
// left empty).
func perfData(label string, v float64, uom string, warn, crit float64) string {
	th := func(x float64) string {
		if x == 0 {
			return ""
		}
		return fmt.Sprint(int64(x))
	}
	return fmt.Sprintf("%s=%d%s;%s;%s;0", label, int64(v), uom, th(warn), th(crit))
}

// UnknownLine is the line of a check that could not look at the queue.
func UnknownLine(err error) string {
	return "RELAY QUEUE UNKNOWN: " + oneLine(err.Error())
}
