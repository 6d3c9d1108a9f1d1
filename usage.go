package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/relaymail/relay/sysexits"
)

const usage = `usage: relay [-C FILE] COMMAND [ARGS]
  sendmail [FLAGS] [RECIPIENT...]   submit a message (as sendmail(1))
  mailq                             list the queue
  newaliases                        check the alias file
  queue list [--json]               list the queue (postqueue -p / -j)
  queue show ID [--body|--headers]  show a message's envelope and header, or the message
  queue stats [--json|--format F] [--output FILE] [--domains N]
                                    counts per state, age, domain, smarthost
  queue check [--warn-age D ...]    monitoring plugin (exit 0-3, not sysexits)
  daemon                            run the queue: pick up new mail at once, retry on schedule
  queue run                         one delivery pass, then exit (nothing while a daemon runs)
  queue flush [-v] [ID...]          make deferred mail due now
  queue delete ID...|--all          delete messages
  queue hold ID...|--all            put messages on hold
  queue release ID...|--all         release held messages
  check [--config-only [-C FILE]]   validate configuration and spool (or only the file)
  probe [--send-to ADDR] [-v]       try each smarthost and explain what fails
  oauth login|status|logout [NAME]  the OAuth 2.0 grant of a smarthost
  install [--prefix DIR] [--dry-run] [--force] [--package]
                                    set up a system install (user, spool, links)
  rewrite ADDR...                   show what addresses become
  listener passwd [--delete] NAME   set a password of [daemon] listen_users
  import FORMAT [PATH] [--write DIR] [--force] [--queue] [--queue-dir DIR]
                                    import msmtp, ssmtp, nullmailer, dma or postfix
  version                           print the version
  help [COMMAND]                    this list, or a command's usage
Every command prints its usage with --help (or -h). See relay(8).
`

// commandUsage is what `relay COMMAND --help` and `relay help COMMAND`
// print (on stdout, exit 0).
var commandUsage = map[string]string{
	"sendmail": `usage: sendmail [FLAGS] [RECIPIENT...]   (also: relay sendmail ...)
Reads a message on standard input and queues it for the smarthost.
  -t            take the recipients from To, Cc and Bcc
  -i, -oi       a line with a single dot does not end the message
  -f ADDR       the envelope sender (-r is the same)
  -F NAME       the sender's full name for a generated From
  --read-envelope-from  without -f, the envelope sender from the From header
  -a NAME       send through the [[smarthost]] named NAME only (msmtp's account)
  -v            deliver at once and show the SMTP dialogue
  --wait[=DUR]  deliver at once and wait for the result (default 60s)
  -N, -R, -V, -B  DSN options and body type, kept with the message
  -bp           list the queue (as mailq)
  -bs           an SMTP session on standard input and output
  -bv ADDR...   show what addresses become; nothing is sent
  -bi           check the alias file (as newaliases)
  -q            make deferred mail due now (as relay queue flush)
  -C FILE       the configuration file
Sendmail's other flags are accepted and ignored (-h N is a hop count, not
help: only --help as the first argument prints this). See sendmail(8).
`,
	"mailq": `usage: mailq   (also: relay mailq, sendmail -bp, relay queue list)
Lists the queue like postqueue -p. See mailq(1).
`,
	"newaliases": `usage: newaliases   (also: relay newaliases, sendmail -bi)
Checks the alias file and prints its problems with file:line; exits 0.
See newaliases(8).
`,
	"queue": `usage: relay queue COMMAND [ARGS]
  list [--json]              list the queue (postqueue -p / -j)
  show ID                    a message's envelope and header
  show ID --body             the stored message (as postcat); --headers: its header
  stats [--json | --format text|json|prometheus] [--output FILE] [--domains N]
                             messages, bytes, ages per state (incoming, deferred,
                             held, corrupt), top recipient domains (default 10),
                             per smarthost; --output writes FILE atomically (for
                             node exporter's textfile collector)
  check [--warn-age 30m] [--crit-age 2h] [--warn-count 10] [--crit-count 100]
        [--held critical|warning|ok] [--corrupt warning|critical|ok]
                             a monitoring plugin (Nagios, Icinga, NRPE, Zabbix):
                             one line with performance data; its exit codes are
                             the plugins' 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
                             NOT sysexits (the one relay command without them)
  run                        one delivery pass over what is due, then exit
  flush [-v] [ID...]         make deferred mail due now (-v: deliver in the foreground)
  delete ID...|--all         delete messages
  hold ID...|--all           put messages on hold
  release ID...|--all        release held messages
See relay(8), "The queue commands".
`,
	"daemon": `usage: relay daemon
The long-running queue runner: picks up new mail at once, retries on
schedule, and serves [daemon] listen. SIGTERM stops it; SIGHUP reopens the
log and reads the configuration again. See relay-daemon(8).
`,
	"check": `usage: relay check [--config-only [-C FILE]]
Validates the configuration, the files it names and the spool. Exit 0: fine
(warnings on stderr); 78: configuration errors; 75: mail is stuck.
--config-only: FILE and the files it names, nothing else (no spool, no
root); exit 0 or 78, each problem as file:line: key: message. For Ansible's
validate and Salt's check_cmd.
See relay(8), "relay check".
`,
	"probe": `usage: relay probe [--send-to ADDR] [-v]
Connects to each smarthost and reports route, TLS, certificate, EHLO and
AUTH, and explains every failure; nothing is sent unless --send-to names a
recipient for a test message. -v shows the SMTP dialogue (secrets
redacted). Exit 0 when every smarthost works, 69 when one does not.
See relay(8), "relay probe".
`,
	"oauth": `usage: relay oauth login|status|logout [NAME]
  login NAME     sign in for smarthost NAME: the device flow (a URL and a
                 code to enter) or the authorization-code flow (a URL to
                 open; the redirect comes back or is pasted here); the
                 grant is stored as the daemon user, then the queue flushed
  status [NAME]  account, token expiry, refresh-token age, last error
                 (exit 75 when a login is needed)
  logout NAME    forget the grant (revoke it at the provider too)
No token is ever printed. See relay(8), "relay oauth".
`,
	"install": `usage: relay install [--prefix DIR] [--dry-run] [--force] [--package]
Sets up a system install: the relay user, the spool, the configuration
directory and the links sendmail, mailq and newaliases. --dry-run prints
the steps without doing them; --force replaces another MTA's sendmail;
--package makes only the user and the spool (the packages' scripts).
See relay-install(8).
`,
	"rewrite": `usage: relay rewrite ADDR...   (also: sendmail -bv ADDR...)
Shows what each address becomes as envelope sender, recipient and From, and
which rule did it; nothing is sent. See relay-rewrite(7).
`,
	"listener": `usage: relay listener passwd [--delete] NAME
Sets NAME's password in the [daemon] listen_users file (bcrypt), adding
NAME when it is not there; --delete removes NAME. The password is asked
twice on the terminal, or read as the first line of standard input. The
file is replaced atomically; a running daemon uses it at the next AUTH.
See relay(8), "relay listener passwd".
`,
	"import": `usage: relay import FORMAT [PATH] [--write DIR] [--force] [--queue] [--queue-dir DIR]
Reads the configuration of msmtp (/etc/msmtprc, ~/.msmtprc), ssmtp
(/etc/ssmtp/ssmtp.conf), nullmailer (/etc/nullmailer), dma
(/etc/dma/dma.conf) or postfix (/etc/postfix/main.cf, or postconf -n
output) and prints a relay.toml; stderr says what became of every setting
(mapped, not needed, not possible, insecure, unknown). Passwords go to
secret files, never into relay.toml.
  --write DIR      write DIR/relay.toml and its secret files (mode 0640,
                   group relay); an existing file is kept unless --force
  --queue          move the waiting mail of nullmailer, dma or msmtpq into
                   relay's spool; --queue-dir DIR names another queue
Exit 65: a malformed source (file:line); 66: no source; 73: a file exists.
See relay-import(8).
`,
	"version": `usage: relay version
Prints the version.
`,
	"help": `usage: relay help [COMMAND]
Prints the list of commands, or COMMAND's usage.
`,
}

// helpAsked reports whether a relay command's arguments ask for its usage:
// --help or -h anywhere. For sendmail, whose -h N is a hop count, only
// --help as the first argument does.
func helpAsked(cmd string, args []string) bool {
	if cmd == "sendmail" {
		return len(args) > 0 && args[0] == "--help"
	}
	return slices.Contains(args, "--help") || slices.Contains(args, "-h")
}

// help is relay help [COMMAND].
func (c *cli) help(args []string) error {
	switch {
	case len(args) == 0:
		fmt.Fprint(c.stdout, usage)
	case len(args) == 1 && commandUsage[args[0]] != "":
		fmt.Fprint(c.stdout, commandUsage[args[0]])
	default:
		return sysexits.New(sysexits.Usage, "help: unknown command %q (commands: %s)", strings.Join(args, " "), commandNames())
	}
	return nil
}

func commandNames() string {
	names := make([]string, 0, len(commandUsage))
	for n := range commandUsage {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
