package metrics

import (
	"io"
	"slices"
	"strings"
	"sync"
)

// Registry holds counters, gauges and histograms between scrapes, and
// collectors that write families computed at scrape time (the queue's
// gauges). Its methods are safe for concurrent use.
type Registry struct {
	mu         sync.Mutex
	fams       []*family
	collectors []func(*Writer)
}

type family struct {
	name, help string
	typ        Type
	labels     []string
	buckets    []float64 // histograms: upper bounds, ascending, without +Inf
	series     map[string]*series
}

type series struct {
	labels []string // name, value pairs
	value  float64  // counter or gauge; histogram: sum
	counts []uint64 // histogram: per bucket (not cumulative), then +Inf
	n      uint64   // histogram: count
}

// Vec is a metric family with labels; its methods take the label values
// in the order the family was made with.
type Vec struct {
	r *Registry
	f *family
}

func (r *Registry) add(name, help string, typ Type, buckets []float64, labels []string) *Vec {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := &family{name: name, help: help, typ: typ, labels: labels, buckets: buckets, series: map[string]*series{}}
	r.fams = append(r.fams, f)
	return &Vec{r, f}
}

// Counter makes a counter family (name ends in _total).
func (r *Registry) Counter(name, help string, labels ...string) *Vec {
	return r.add(name, help, Counter, nil, labels)
}

// Gauge makes a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *Vec {
	return r.add(name, help, Gauge, nil, labels)
}

// Histogram makes a histogram family with these upper bounds (ascending;
// +Inf is added).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *Vec {
	return r.add(name, help, Histogram, slices.Clone(buckets), labels)
}

// Collect adds fn, which writes families of its own at every scrape,
// after the registry's.
func (r *Registry) Collect(fn func(*Writer)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectors = append(r.collectors, fn)
}

// get returns the series of these label values, made on first use. The
// caller holds r.mu.
func (v *Vec) get(values []string) *series {
	key := strings.Join(values, "\x00")
	s := v.f.series[key]
	if s == nil {
		s = &series{}
		for i, name := range v.f.labels {
			val := ""
			if i < len(values) {
				val = values[i]
			}
			s.labels = append(s.labels, name, val)
		}
		if v.f.typ == Histogram {
			s.counts = make([]uint64, len(v.f.buckets)+1)
		}
		v.f.series[key] = s
	}
	return s
}

// Touch makes the series of these label values exist (at 0), so that a
// counter is exported before its first event: rate() and increase() need
// the zero.
func (v *Vec) Touch(values ...string) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	v.get(values)
}

// Add adds d to a counter or gauge.
func (v *Vec) Add(d float64, values ...string) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	v.get(values).value += d
}

// Inc adds 1 to a counter or gauge.
func (v *Vec) Inc(values ...string) { v.Add(1, values...) }

// Set sets a gauge.
func (v *Vec) Set(x float64, values ...string) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	v.get(values).value = x
}

// Delete forgets a series (a gauge about something gone).
func (v *Vec) Delete(values ...string) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	delete(v.f.series, strings.Join(values, "\x00"))
}

// Observe records one observation in a histogram.
func (v *Vec) Observe(x float64, values ...string) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	s := v.get(values)
	i, _ := slices.BinarySearch(v.f.buckets, x) // first bound >= x
	s.counts[i]++
	s.n++
	s.value += x
}

// WriteTo writes every family in the text exposition format, series
// sorted by their label values, then the collectors' families.
func (r *Registry) WriteTo(out io.Writer) (int64, error) {
	cw := &countWriter{w: out}
	w := NewWriter(cw)
	r.mu.Lock()
	for _, f := range r.fams {
		f.write(w)
	}
	collectors := slices.Clone(r.collectors)
	r.mu.Unlock()
	for _, fn := range collectors {
		fn(w)
	}
	err := w.Flush()
	return cw.n, err
}

func (f *family) write(w *Writer) {
	if len(f.series) == 0 {
		return // a family without samples is noise to promtool
	}
	w.Family(f.name, f.help, f.typ)
	keys := make([]string, 0, len(f.series))
	for k := range f.series {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s := f.series[k]
		if f.typ != Histogram {
			w.Sample(f.name, s.labels, s.value)
			continue
		}
		var cum uint64
		for i, le := range f.buckets {
			cum += s.counts[i]
			w.Sample(f.name+"_bucket", append(slices.Clip(s.labels), "le", FormatValue(le)), float64(cum))
		}
		w.Sample(f.name+"_bucket", append(slices.Clip(s.labels), "le", "+Inf"), float64(s.n))
		w.Sample(f.name+"_sum", s.labels, s.value)
		w.Sample(f.name+"_count", s.labels, float64(s.n))
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
