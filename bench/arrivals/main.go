// Command arrivals waits until N messages carrying a tag (a header line
// such as "X-Relay-Bench: RUNID") are in a Maildir (new/ and cur/), and
// prints the Unix time, in seconds with microseconds, at which the last
// one was seen. Messages already there at the start are not looked at;
// new files are read once each; the poll runs every 10 ms.
//
//	arrivals -maildir /tmp/relay-e2e/maildir -tag "X-Relay-Bench: RUNID" -n 500 -timeout 600s
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	dir := flag.String("maildir", "", "the Maildir")
	tag := flag.String("tag", "", "header line that marks the messages")
	n := flag.Int("n", 1, "messages to wait for")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after")
	ready := flag.String("ready", "", "file to create once the messages already there are listed (they are not read)")
	flag.Parse()
	seen := map[string]bool{}
	found := 0
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(*dir, sub))
		for _, e := range ents {
			key, _, _ := strings.Cut(e.Name(), ":")
			seen[key] = true
		}
	}
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "arrivals:", err)
			os.Exit(1)
		}
	}
	deadline := time.Now().Add(*timeout)
	for {
		for _, sub := range []string{"new", "cur"} {
			ents, _ := os.ReadDir(filepath.Join(*dir, sub))
			for _, e := range ents {
				// Dovecot may move a file from new/ to cur/ and add flags:
				// the unique part is the name up to ':'.
				key, _, _ := strings.Cut(e.Name(), ":")
				if seen[key] {
					continue
				}
				has, err := hasTag(filepath.Join(*dir, sub, e.Name()), *tag)
				if err != nil {
					continue
				}
				seen[key] = true
				if has {
					found++
				}
			}
		}
		now := time.Now()
		if found >= *n {
			fmt.Printf("%d.%06d\n", now.Unix(), now.Nanosecond()/1000)
			return
		}
		if now.After(deadline) {
			fmt.Fprintf(os.Stderr, "arrivals: %d of %d after %v\n", found, *n, *timeout)
			os.Exit(1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hasTag reads the header of a delivered message and reports whether it
// has the tag line.
func hasTag(p, tag string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			return false, nil
		}
		if line == tag {
			return true, nil
		}
	}
	return false, sc.Err()
}
