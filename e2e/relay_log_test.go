package e2e_test

// Reading relay's own log lines back as key=value fields.

import (
	"regexp"
	"strconv"
	"strings"
)

// ------------------------------------------------------- relay's log --

type logLine struct {
	raw string
	kv  map[string]string
}

var kvRE = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// parseLog reads relay's key=value lines (lines without id= are kept too).
func parseLog(s string) []logLine {
	var out []logLine
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		l := logLine{raw: line, kv: map[string]string{}}
		for _, m := range kvRE.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				} else {
					v = strings.Trim(v, `"`)
				}
			}
			l.kv[m[1]] = v
		}
		out = append(out, l)
	}
	return out
}

// recipientLines keeps the per-recipient delivery lines (those with to=).
func recipientLines(lines []logLine) []logLine {
	var out []logLine
	for _, l := range lines {
		if l.kv["to"] != "" {
			out = append(out, l)
		}
	}
	return out
}
