// Command arrivals waits until N messages carrying a tag (a header line
// such as "X-Relay-Bench: RUNID") are in a Maildir's new/, and prints the
// Unix time, in seconds with microseconds, at which the last one arrived.
// With -each the tag is a prefix and every message arriving with a header
// line that starts with it is printed at once, as "TIME REST" (REST: the
// line after the prefix), so a caller can time messages one by one.
//
// It watches new/ with inotify (fsnotify) and reads each new file's header
// once, so that waiting costs next to nothing beside the programs being
// measured, however many messages the Maildir holds already; a full
// rescan every few seconds catches events the kernel may have dropped.
//
//	arrivals -maildir /tmp/relay-e2e/maildir -tag "X-Relay-Bench: RUNID" -n 500 -timeout 600s -ready FILE
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

func main() {
	dir := flag.String("maildir", "", "the Maildir")
	tag := flag.String("tag", "", "header line that marks the messages")
	n := flag.Int("n", 1, "messages to wait for")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after")
	ready := flag.String("ready", "", "file to create once the watch is set up")
	each := flag.Bool("each", false, "tag is a prefix; print the time and the rest of the line of every message as it arrives")
	flag.Parse()
	if err := run(filepath.Join(*dir, "new"), *tag, *n, *timeout, *ready, *each); err != nil {
		fmt.Fprintln(os.Stderr, "arrivals:", err)
		os.Exit(1)
	}
}

func run(newDir, tag string, n int, timeout time.Duration, ready string, each bool) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(newDir); err != nil {
		return err
	}
	// What is there already is not ours: remember the names unread.
	seen := map[string]bool{}
	if err := listNew(newDir, func(name string) { seen[name] = true }); err != nil {
		return err
	}
	if ready != "" {
		if err := os.WriteFile(ready, nil, 0o600); err != nil {
			return err
		}
	}
	found := 0
	check := func(name string) {
		if seen[name] {
			return
		}
		rest, has, err := hasTag(filepath.Join(newDir, name), tag, each)
		if err != nil {
			return // gone or unreadable: the rescan looks again
		}
		seen[name] = true
		if has {
			found++
			if each {
				now := time.Now()
				fmt.Printf("%d.%06d %s\n", now.Unix(), now.Nanosecond()/1000, rest)
			}
		}
	}
	deadline := time.After(timeout)
	rescan := time.NewTicker(3 * time.Second)
	defer rescan.Stop()
	for found < n {
		select {
		case ev := <-w.Events:
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Write) {
				check(filepath.Base(ev.Name))
			}
		case err := <-w.Errors:
			fmt.Fprintln(os.Stderr, "arrivals: watch:", err)
		case <-rescan.C:
			if err := listNew(newDir, check); err != nil {
				return err
			}
		case <-deadline:
			return fmt.Errorf("%d of %d after %v", found, n, timeout)
		}
	}
	if !each {
		now := time.Now()
		fmt.Printf("%d.%06d\n", now.Unix(), now.Nanosecond()/1000)
	}
	return nil
}

func listNew(dir string, fn func(string)) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	for _, name := range names {
		fn(name)
	}
	return err
}

// hasTag reads the header of a delivered message and reports whether it
// has the tag line (with prefix: a line starting with tag, whose rest it
// returns).
func hasTag(p, tag string, prefix bool) (string, bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			return "", false, nil
		}
		if line == tag {
			return "", true, nil
		}
		if prefix && strings.HasPrefix(line, tag) {
			return line[len(tag):], true, nil
		}
	}
	return "", false, sc.Err()
}
