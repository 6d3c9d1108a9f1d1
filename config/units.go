package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In TOML it is written either as an integer
// (bytes) or as a string: "2048", "100B", "512KB", "50MB", "1GB". K, M and G
// are powers of 1024; "KiB", "MiB" and "GiB" are accepted too, and the unit
// is case-insensitive.
type Size int64

// Size units.
const (
	Byte     Size = 1
	Kilobyte Size = 1 << 10
	Megabyte Size = 1 << 20
	Gigabyte Size = 1 << 30
)

var sizeUnits = map[string]Size{
	"": Byte, "b": Byte,
	"k": Kilobyte, "kb": Kilobyte, "kib": Kilobyte,
	"m": Megabyte, "mb": Megabyte, "mib": Megabyte,
	"g": Gigabyte, "gb": Gigabyte, "gib": Gigabyte,
}

const sizeForms = `a number of bytes or a number with B, KB, MB or GB (powers of 1024), e.g. "50MB"`

// ParseSize parses a size string such as "50MB" (see [Size]).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q: use %s", s, sizeForms)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(n) * unit, nil
}

// UnmarshalTOML implements [toml.Unmarshaler].
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: must not be negative", v)
		}
		*s = Size(v)
		return nil
	case string:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*s = n
		return nil
	}
	return fmt.Errorf("must be %s, not %s", sizeForms, tomlType(v))
}

// String gives the size in the largest unit that divides it exactly:
// "50MB", "512KB", "100B".
func (s Size) String() string {
	switch {
	case s != 0 && s%Gigabyte == 0:
		return strconv.FormatInt(int64(s/Gigabyte), 10) + "GB"
	case s != 0 && s%Megabyte == 0:
		return strconv.FormatInt(int64(s/Megabyte), 10) + "MB"
	case s != 0 && s%Kilobyte == 0:
		return strconv.FormatInt(int64(s/Kilobyte), 10) + "KB"
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText implements [encoding.TextMarshaler] (the form String gives).
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Duration is a length of time. In TOML it is a string of one or more
// number+unit pairs with the units s, m, h, d (24h) and w (7d): "30s", "5m",
// "1h30m", "5d", "2w". "" and "0" mean zero.
type Duration time.Duration

const (
	day  = 24 * time.Hour
	week = 7 * day
)

var durationUnits = map[byte]time.Duration{
	's': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': day, 'w': week,
}

const durationForms = `a number with a unit s, m, h, d or w, or several of them: "30s", "5m", "1h30m", "5d", "2w"`

// ParseDuration parses a duration string such as "1h30m" (see [Duration]).
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" || t == "0" {
		return 0, nil
	}
	bad := fmt.Errorf("invalid duration %q: use %s", s, durationForms)
	var total time.Duration
	for t != "" {
		i := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == 0 || i == len(t) {
			return 0, bad
		}
		unit, ok := durationUnits[t[i]]
		if !ok {
			return 0, bad
		}
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil || n > int64(math.MaxInt64/unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		total += time.Duration(n) * unit
		t = t[i+1:]
	}
	return Duration(total), nil
}

// UnmarshalTOML implements [toml.Unmarshaler].
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("must be a string with %s, not %s", durationForms, tomlType(v))
	}
	n, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = n
	return nil
}

// D returns the duration as a [time.Duration].
func (d Duration) D() time.Duration { return time.Duration(d) }

// String gives the duration in the form it is written in: "5d", "1h30m",
// "0s".
func (d Duration) String() string { return formatDuration(time.Duration(d)) }

// MarshalText implements [encoding.TextMarshaler] (the form String gives).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func formatDuration(d time.Duration) string {
	if d <= 0 || d%time.Second != 0 {
		if d == 0 {
			return "0s"
		}
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		c byte
		d time.Duration
	}{{'w', week}, {'d', day}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second}} {
		if d >= u.d {
			b.WriteString(strconv.FormatInt(int64(d/u.d), 10))
			b.WriteByte(u.c)
			d %= u.d
		}
	}
	return b.String()
}

// RateLimit is a number of messages per period, written "100/h", "20/m",
// "1000/d" or "5/30m" (the period is a [Duration], a bare unit meaning one of
// it). The zero value, written "", means no limit.
type RateLimit struct {
	N   int
	Per time.Duration
}

const rateForms = `messages per period such as "100/h", "20/m", "1000/d" or "5/30m"`

// ParseRateLimit parses a rate limit such as "100/h" (see [RateLimit]).
func ParseRateLimit(s string) (RateLimit, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return RateLimit{}, nil
	}
	bad := fmt.Errorf("invalid rate limit %q: use %s", s, rateForms)
	num, per, ok := strings.Cut(t, "/")
	if !ok {
		return RateLimit{}, bad
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return RateLimit{}, bad
	}
	per = strings.TrimSpace(per)
	if per != "" && per[0] >= 'a' && per[0] <= 'z' {
		per = "1" + per
	}
	d, err := ParseDuration(per)
	if err != nil || d <= 0 {
		return RateLimit{}, bad
	}
	return RateLimit{N: n, Per: time.Duration(d)}, nil
}

// UnmarshalTOML implements [toml.Unmarshaler].
func (r *RateLimit) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("must be a string with %s, not %s", rateForms, tomlType(v))
	}
	l, err := ParseRateLimit(s)
	if err != nil {
		return err
	}
	*r = l
	return nil
}

// IsZero reports whether there is no limit.
func (r RateLimit) IsZero() bool { return r.N == 0 }

// String gives the limit as written: "100/h", "5/30m", "" for no limit.
func (r RateLimit) String() string {
	if r.IsZero() {
		return ""
	}
	p := formatDuration(r.Per)
	if len(p) == 2 && p[0] == '1' {
		p = p[1:]
	}
	return strconv.Itoa(r.N) + "/" + p
}

// MarshalText implements [encoding.TextMarshaler] (the form String gives).
func (r RateLimit) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// tomlType names the TOML type of a value decoded by BurntSushi/toml, with
// its article: "a string", "an integer".
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	case nil:
		return "nothing"
	}
	if _, ok := v.(interface{ Year() int }); ok {
		return "a date/time"
	}
	return fmt.Sprintf("a %T", v)
}
