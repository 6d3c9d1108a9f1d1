// Command relay is a sendmail-compatible smarthost relay client: installed
// as /usr/sbin/sendmail it spools every message durably and hands it to an
// authenticated TLS smarthost.
//
// The binary answers to several names, like Postfix and Exim: as sendmail,
// mailq or newaliases it behaves as those; as relay it takes a subcommand.
// The root package parses the command line, dispatches and maps errors to
// exit codes; every command's work is done in a package of its own:
// sendmailcompat (sendmail), smtpd (sendmail -bs), mailq (the queue
// commands), daemon (relay daemon, relay queue run, sendmail --wait),
// check, relay (probe), oauth (relay oauth), rewrite (relay rewrite,
// newaliases), install and migrate (relay import).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/relaymail/relay/config"
	"github.com/relaymail/relay/sysexits"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches on the program name and the subcommand and returns the
// exit code.
func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, prog: filepath.Base(argv[0])}
	args := argv[1:]
	if (c.prog == "sendmail" || c.prog == "mailq" || c.prog == "newaliases") && helpAsked("sendmail", args) {
		fmt.Fprint(stdout, commandUsage[c.prog])
		return 0
	}
	switch c.prog {
	case "sendmail":
		return c.exit(c.sendmail(args))
	case "mailq":
		return c.exit(c.sendmail(append([]string{"-bp"}, args...)))
	case "newaliases":
		return c.exit(c.sendmail(append([]string{"-bi"}, args...)))
	}
	c.prog = "relay"
	args, c.configFlag = globalConfig(args)
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return sysexits.Usage
	}
	cmd, args := args[0], args[1:]
	if commandUsage[cmd] != "" && helpAsked(cmd, args) {
		fmt.Fprint(stdout, commandUsage[cmd])
		return 0
	}
	switch cmd {
	case "sendmail":
		c.prog = "sendmail"
		if c.configFlag != "" {
			args = append([]string{"-C", c.configFlag}, args...)
		}
		return c.exit(c.sendmail(args))
	case "mailq":
		return c.exit(c.queue(append([]string{"list"}, args...)))
	case "newaliases":
		return c.exit(c.newaliases())
	case "queue":
		if len(args) > 0 && args[0] == "check" {
			return c.queueCheck(args[1:]) // monitoring-plugin codes
		}
		return c.exit(c.queue(args))
	case "check":
		return c.exit(c.check(args))
	case "rewrite":
		return c.exit(c.rewrite(args))
	case "install":
		return c.exit(c.install(args))
	case "version", "--version":
		fmt.Fprintln(stdout, "relay", version())
		return 0
	case "help":
		return c.exit(c.help(args))
	case "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	case "probe":
		return c.exit(c.probe(args))
	case "oauth":
		return c.exit(c.oauthCmd(args))
	case "daemon":
		return c.exit(c.daemon(args))
	case "listener":
		return c.exit(c.listenerCmd(args))
	case "import":
		return c.exit(c.importCmd(args))
	}
	return c.exit(sysexits.New(sysexits.Usage, "unknown command %q (see relay help)", cmd))
}

// cli holds what every command needs: the standard streams and the
// configuration file named on the command line.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	prog           string
	configFlag     string
}

// loadConfig reads the configuration the command line, the environment
// and the caller's uid point to (see config.Locate); a bad one exits 78.
func (c *cli) loadConfig() (*config.Config, error) {
	loc := config.Locate(c.configFlag, os.Getenv, os.Geteuid())
	cfg, err := config.Load(loc)
	return cfg, sysexits.Wrap(sysexits.Config, err)
}

// globalConfig takes -C FILE, --config FILE and --config=FILE out of the
// arguments before the subcommand.
func globalConfig(args []string) (rest []string, config string) {
	for len(args) > 0 {
		a := args[0]
		switch {
		case (a == "-C" || a == "--config") && len(args) > 1:
			config, args = args[1], args[2:]
		case strings.HasPrefix(a, "--config="):
			config, args = strings.TrimPrefix(a, "--config="), args[1:]
		default:
			return args, config
		}
	}
	return args, config
}

// exit prints err as one line per problem, prefixed with the program name,
// and returns its exit code.
func (c *cli) exit(err error) int {
	if err == nil {
		return 0
	}
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(c.stderr, "%s: %s\n", c.prog, line)
	}
	return sysexits.Code(err, sysexits.Software)
}

// buildVersion is the version packaging/build.sh stamps into the binary
// (-ldflags "-X main.buildVersion=..."), the same string the Debian package
// and the RPM carry: from the git tag or git describe.
var buildVersion string

// version is the stamped version, else what the Go toolchain recorded
// (a module version, or "(devel)" and the commit of a checkout build).
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}
