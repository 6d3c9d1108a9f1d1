// Command spawn measures how long programs take to run, start to exit,
// each with the same file on its standard input: rounds in which every
// command runs once, in the order given, so that background noise hits
// them alike. For each it prints the median and 90th percentile of the
// wall time and the median CPU time (user + system) the process used;
// on a busy machine the CPU time is the steadier figure.
// bench/startup.sh runs it on relay's sendmail and what it is made of.
//
//	spawn -n 200 -warmup 10 -in message.eml '/bin/true' 'relay version' 'sendmail -i a@b'
//
// A command is split on spaces (no quoting). Output, one line per
// command: "NAME runs=N median_ms=M p90_ms=P cpu_ms=C".
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 200, "measured runs per command")
	warmup := flag.Int("warmup", 10, "runs per command before measuring")
	in := flag.String("in", os.DevNull, "standard input of every run")
	flag.Parse()
	cmds := flag.Args()
	wall := make([][]time.Duration, len(cmds))
	cpu := make([][]time.Duration, len(cmds))
	for i := range *n + *warmup {
		for j, c := range cmds {
			f := strings.Fields(c)
			stdin, err := os.Open(*in)
			if err != nil {
				fmt.Fprintln(os.Stderr, "spawn:", err)
				os.Exit(1)
			}
			cmd := exec.Command(f[0], f[1:]...)
			cmd.Stdin, cmd.Stderr = stdin, os.Stderr
			start := time.Now()
			err = cmd.Run()
			d := time.Since(start)
			stdin.Close()
			if err != nil {
				fmt.Fprintf(os.Stderr, "spawn: %s: %v\n", c, err)
				os.Exit(1)
			}
			if i >= *warmup {
				wall[j] = append(wall[j], d)
				cpu[j] = append(cpu[j], cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for j, c := range cmds {
		slices.Sort(wall[j])
		slices.Sort(cpu[j])
		w, u := wall[j], cpu[j]
		fmt.Printf("%s runs=%d median_ms=%.2f p90_ms=%.2f cpu_ms=%.2f\n", strings.ReplaceAll(c, " ", "_"),
			len(w), ms(w[len(w)/2]), ms(w[len(w)*9/10]), ms(u[len(u)/2]))
	}
}
