package metrics

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
)

// Type is the type of a metric family as the TYPE line gives it.
type Type string

const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Writer writes families in the text exposition format: Family starts
// one (its HELP and TYPE lines), Sample adds a line to it. Errors stick:
// Flush returns the first.
type Writer struct {
	w *bufio.Writer
}

// NewWriter writes to w; call Flush at the end.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w)} }

// Family starts the metric family name.
func (w *Writer) Family(name, help string, typ Type) {
	w.w.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
	w.w.WriteString("# TYPE " + name + " " + string(typ) + "\n")
}

// Sample writes one sample of the current family: name (the family's,
// or its _bucket, _sum, _count for a histogram), labels as name, value
// pairs (in that order) and the value.
func (w *Writer) Sample(name string, labels []string, v float64) {
	w.w.WriteString(name)
	if len(labels) > 0 {
		w.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.w.WriteByte(',')
			}
			w.w.WriteString(labels[i] + `="` + escapeValue(labels[i+1]) + `"`)
		}
		w.w.WriteByte('}')
	}
	w.w.WriteByte(' ')
	w.w.WriteString(FormatValue(v))
	w.w.WriteByte('\n')
}

// Flush writes what is buffered.
func (w *Writer) Flush() error { return w.w.Flush() }

// FormatValue writes a sample value as the format wants it: the shortest
// exact decimal, +Inf, -Inf, NaN.
func FormatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10) // counts and Unix times in full
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeHelp escapes a HELP text: backslash and line feed. (A loop, not
// a package-level strings.Replacer: nothing here may cost the sendmail
// path an initialisation.)
func escapeHelp(s string) string { return escape(s, false) }

// escapeValue escapes a label value: backslash, line feed, double quote.
func escapeValue(s string) string { return escape(s, true) }

func escape(s string, quote bool) string {
	special := "\\\n"
	if quote {
		special += `"`
	}
	if !strings.ContainsAny(s, special) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
