// Command psspeak samples the memory of one program's processes and prints
// the peak of their sum when it is told to stop (SIGTERM or SIGINT).
//
// Every -interval (default 10 ms) it walks /proc and, for each process that
// belongs to the program, reads Pss from /proc/PID/smaps_rollup: the
// proportional set size, where a page shared by k processes counts 1/k to
// each, so the sum over a program's processes is what they take together
// (shared libraries and the binary's text counted once, not once per
// process as a sum of RSS would).
//
// A process belongs to the program when
//
//   - its executable (/proc/PID/exe as the kernel names it: the path in
//     the process's own mount namespace) is one of -exe, where an entry
//     ending in '/' takes everything below it, and none of -not; and
//
//   - it is in psspeak's own mount namespace, so that the
//     /usr/sbin/sendmail of an anchor's private namespace
//     (e2e/anchors.sh) and Postfix's are told apart.
//
//     psspeak -exe /usr/sbin/dma -ready FILE   # ... kill -TERM; prints the result
//
// Output, one line: peak_kb=N peak_procs=N samples=N max_procs=N
// (peak_procs: processes at the peak; max_procs: most seen at once).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	exe := flag.String("exe", "", "comma-separated executables; a trailing / takes a directory")
	not := flag.String("not", "", "comma-separated executables (or dirs/) to leave out")
	interval := flag.Duration("interval", 10*time.Millisecond, "sampling interval")
	ready := flag.String("ready", "", "file to create once sampling runs")
	flag.Parse()
	if *exe == "" {
		fmt.Fprintln(os.Stderr, "psspeak: -exe is required")
		os.Exit(2)
	}
	want, skip := split(*exe), split(*not)
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		fmt.Fprintln(os.Stderr, "psspeak:", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "psspeak:", err)
			os.Exit(1)
		}
	}
	var peak, peakProcs, maxProcs, samples int
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		kb, procs := sample(want, skip, self)
		samples++
		if kb > peak {
			peak, peakProcs = kb, procs
		}
		maxProcs = max(maxProcs, procs)
		select {
		case <-stop:
			fmt.Printf("peak_kb=%d peak_procs=%d samples=%d max_procs=%d\n", peak, peakProcs, samples, maxProcs)
			return
		case <-t.C:
		}
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func matches(exe string, list []string) bool {
	for _, w := range list {
		if exe == w || (strings.HasSuffix(w, "/") && strings.HasPrefix(exe, w)) {
			return true
		}
	}
	return false
}

// sample returns the sum of Pss (kB) of the program's processes now, and
// how many there are. A process that ends while it is read is left out.
func sample(want, skip []string, mntns string) (int, int) {
	d, err := os.Open("/proc")
	if err != nil {
		return 0, 0
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	sum, n := 0, 0
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		dir := filepath.Join("/proc", name)
		exe, err := os.Readlink(dir + "/exe")
		if err != nil || !matches(exe, want) || matches(exe, skip) {
			continue
		}
		if ns, err := os.Readlink(dir + "/ns/mnt"); err != nil || ns != mntns {
			continue
		}
		if kb, ok := pss(dir + "/smaps_rollup"); ok {
			sum += kb
			n++
		}
	}
	return sum, n
}

func pss(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "Pss:" {
			kb, err := strconv.Atoi(f[1])
			return kb, err == nil
		}
	}
	return 0, false
}
