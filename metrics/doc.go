// Package metrics writes Prometheus' text exposition format (version
// 0.0.4, the format node exporter's textfile collector reads and every
// Prometheus scrapes): counters, gauges and histograms with labels, and
// a Registry that keeps the daemon's counters and histograms between
// scrapes.
//
// It is relay's own, about 300 lines, instead of
// github.com/prometheus/client_golang: relay is one binary, every sendmail
// run initialises every package it links, and client_golang's (protobuf,
// expfmt, procfs, runtime/metrics) cost about 90 package initialisations
// and a quarter of a megabyte of allocations per run (measured with
// GODEBUG=inittrace=1; the numbers are in the package's closing note,
// docs/relay-metrics.7.md). This package has no init work at all and
// imports only the standard library's formatting, sorting and
// synchronisation.
//
// Names follow Prometheus' naming practices: a relay_ prefix, base units
// (seconds, bytes), _total on counters. promtool check metrics validates
// the output (the tests and the end-to-end suite run it when present).
package metrics
