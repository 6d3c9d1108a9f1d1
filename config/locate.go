package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Location says which configuration file to load and how.
type Location struct {
	Path         string // file to load
	Required     bool   // a missing file is an error (explicit -C / RELAY_CONFIG)
	DefaultSpool string // spool when the file does not set one
}

// Locate finds the configuration file:
//
//  1. explicit (from -C/--config), else $RELAY_CONFIG: required, system
//     spool;
//  2. SystemPath if it exists (or cannot be looked at, so that Load reports
//     why): required, system spool;
//  3. for a user other than root (euid != 0), the single-user file
//     $XDG_CONFIG_HOME/relay/relay.toml (default ~/.config), optional, with
//     the spool in $XDG_STATE_HOME/relay (default ~/.local/state/relay);
//  4. else SystemPath, optional, system spool.
//
// A relative -C or RELAY_CONFIG is taken from the working directory and
// made absolute here, once: every process relay starts (the detached
// runner works in /) and every message names the same file.
//
// As the XDG base directory specification says, relative XDG_* values are
// ignored. getenv is os.Getenv outside tests.
func Locate(explicit string, getenv func(string) string, euid int) Location {
	if explicit != "" {
		return Location{Path: absolute(explicit), Required: true, DefaultSpool: SystemSpool}
	}
	if p := getenv("RELAY_CONFIG"); p != "" {
		return Location{Path: absolute(p), Required: true, DefaultSpool: SystemSpool}
	}
	if _, err := os.Stat(SystemPath); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return Location{Path: SystemPath, Required: true, DefaultSpool: SystemSpool}
	}
	if euid != 0 {
		home := getenv("HOME")
		cfg := xdgDir(getenv("XDG_CONFIG_HOME"), home, ".config")
		state := xdgDir(getenv("XDG_STATE_HOME"), home, filepath.Join(".local", "state"))
		if cfg != "" && state != "" {
			return Location{
				Path:         filepath.Join(cfg, "relay", "relay.toml"),
				DefaultSpool: filepath.Join(state, "relay"),
			}
		}
	}
	return Location{Path: SystemPath, DefaultSpool: SystemSpool}
}

// xdgDir gives an XDG base directory: the variable's value when absolute,
// else home/fallback; "" when neither is usable.
func xdgDir(val, home, fallback string) string {
	if filepath.IsAbs(val) {
		return val
	}
	if filepath.IsAbs(home) {
		return filepath.Join(home, fallback)
	}
	return ""
}

// absolute makes p absolute against the working directory; p unchanged
// when there is none.
func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
