package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/relaymail/relay/config"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want config.Size
		str  string
	}{
		{"2048", 2048, "2KB"},
		{"100B", 100, "100B"},
		{"100b", 100, "100B"},
		{"512KB", 512 << 10, "512KB"},
		{"512kb", 512 << 10, "512KB"},
		{"512K", 512 << 10, "512KB"},
		{"50MB", 50 << 20, "50MB"},
		{"50 MiB", 50 << 20, "50MB"},
		{"50m", 50 << 20, "50MB"},
		{"1GB", 1 << 30, "1GB"},
		{"2GiB", 2 << 30, "2GB"},
		{"1536KB", 1536 << 10, "1536KB"},
		{"1025", 1025, "1025B"},
		{"0", 0, "0B"},
		{" 7MB ", 7 << 20, "7MB"},
	}
	for _, tt := range tests {
		got, err := config.ParseSize(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseSize(%q) = %d (%s), %v; want %d (%s)", tt.in, got, got, err, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"", "MB", "-1", "-1MB", "1.5GB", "50XB", "50 M B", "1TB", "0x10", "99999999999999999999", "9999999999999GB"} {
		if got, err := config.ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"", 0, "0s"},
		{"0", 0, "0s"},
		{"30s", 30 * time.Second, "30s"},
		{"5m", 5 * time.Minute, "5m"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"5d", 5 * 24 * time.Hour, "5d"},
		{"2w", 14 * 24 * time.Hour, "2w"},
		{"1w2d3h4m5s", (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second, "1w2d3h4m5s"},
		{"36h", 36 * time.Hour, "1d12h"},
		{"0s", 0, "0s"},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if err != nil || got.D() != tt.want || got.String() != tt.str {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tt.in, got.D(), got, err, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"5", "m", "5x", "-5m", "1.5h", "5 m", "5mm", "1h 30m", "5ms", "999999999999w"} {
		_, err := config.ParseDuration(bad)
		if err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), `"1h30m"`) && !strings.Contains(err.Error(), "too long") {
			t.Errorf("ParseDuration(%q) error %q does not name the accepted forms", bad, err)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want config.RateLimit
		str  string
	}{
		{"", config.RateLimit{}, ""},
		{"100/h", config.RateLimit{N: 100, Per: time.Hour}, "100/h"},
		{"20/m", config.RateLimit{N: 20, Per: time.Minute}, "20/m"},
		{"1000/d", config.RateLimit{N: 1000, Per: 24 * time.Hour}, "1000/d"},
		{"5/30m", config.RateLimit{N: 5, Per: 30 * time.Minute}, "5/30m"},
		{"5/1h30m", config.RateLimit{N: 5, Per: 90 * time.Minute}, "5/1h30m"},
		{"1/1h", config.RateLimit{N: 1, Per: time.Hour}, "1/h"},
	}
	for _, tt := range tests {
		got, err := config.ParseRateLimit(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseRateLimit(%q) = %+v (%q), %v; want %+v (%q)", tt.in, got, got, err, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"100", "100/", "/h", "0/h", "-1/h", "x/h", "100/x", "100/0", "100 per hour", "1.5/h"} {
		if got, err := config.ParseRateLimit(bad); err == nil {
			t.Errorf("ParseRateLimit(%q) = %+v, want an error", bad, got)
		}
	}
}

// The unit types work with BurntSushi/toml's own decoder too (they
// implement toml.Unmarshaler), integers included for sizes.
func TestUnitsWithTOMLDecode(t *testing.T) {
	var v struct {
		A, B config.Size
		D    config.Duration
		R    config.RateLimit
	}
	if _, err := toml.Decode("A = 1024\nB = \"3MB\"\nD = \"1d\"\nR = \"10/m\"\n", &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 1024 || v.B != 3<<20 || v.D.D() != 24*time.Hour || v.R != (config.RateLimit{N: 10, Per: time.Minute}) {
		t.Errorf("decoded %+v", v)
	}
	for _, bad := range []string{"A = -1", "A = 1.5", "D = 60", "D = \"1y\"", "R = 10"} {
		if _, err := toml.Decode(bad, &v); err == nil {
			t.Errorf("toml.Decode(%q) succeeded", bad)
		}
	}
	// And they encode back to the form they are written in.
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(struct {
		S config.Size
		D config.Duration
		R config.RateLimit
	}{50 << 20, config.Duration(90 * time.Minute), config.RateLimit{N: 5, Per: 30 * time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "S = \"50MB\"\nD = \"1h30m\"\nR = \"5/30m\"\n"; got != want {
		t.Errorf("encoded %q, want %q", got, want)
	}
}
