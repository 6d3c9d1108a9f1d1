package sendmailcompat

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/relaymail/relay/sysexits"
)

// Mode is what an invocation asks for (sendmail's -b flag, -q).
type Mode int

const (
	ModeDeliver    Mode = iota // -bm: read a message and queue it (default)
	ModePrintQueue             // -bp: list the queue (mailq)
	ModeSMTP                   // -bs: an SMTP session on stdin/stdout
	ModeVerify                 // -bv: show what addresses become
	ModeNewaliases             // -bi: check the alias file
	ModeFlush                  // -q: make deferred mail due now
)

// Options is a parsed sendmail command line: what it asks for (Mode,
// -v, --wait, -C) and, embedded, the Submission that describes the message
// the flags fill directly; Message hands that to Enqueue.
type Options struct {
	Mode Mode
	Submission
	Config  string // -C
	Verbose bool   // -v
	Wait    time.Duration
	WaitSet bool // --wait
}

// argKind says whether a flag takes an argument.
type argKind int

const (
	noArg       argKind = iota
	requiredArg         // attached (-fa@b) or the next argument (-f a@b)
	optionalArg         // attached only (-q, -q30m)
)

// flags lists every single-letter flag relay knows. Postfix's sendmail(1)
// is the reference; flags it only accepts for compatibility are accepted and
// ignored here too.
var flags = map[byte]argKind{
	't': noArg, 'i': noArg, 'v': noArg,
	'm': noArg, 'n': noArg, 'G': noArg, 'U': noArg, 'c': noArg, 'x': noArg, // ignored
	'f': requiredArg, 'r': requiredArg, 'F': requiredArg, 'N': requiredArg, 'R': requiredArg,
	'V': requiredArg, 'B': requiredArg, 'C': requiredArg, 'b': requiredArg, 'o': requiredArg,
	'O': requiredArg, 'h': requiredArg, 'L': requiredArg, 'X': requiredArg, 'e': requiredArg, // -O -h -L -X -e ignored
	'A': requiredArg,
	'a': requiredArg, // msmtp's -a ACCOUNT: the smarthost
	'q': optionalArg,
}

// queueInterval is compiled at first use: every sendmail run initialises
// this package, few give -q with an interval.
var queueInterval = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+[smhdw]?)+$`) })

// usageErr is the one error type of the parser: exit 64 with a message.
func usageErr(format string, args ...any) error {
	return sysexits.New(sysexits.Usage, format, args...)
}

// ParseArgs parses sendmail's command line (without argv[0]). Like Postfix's
// sendmail it stops at the first argument that is not a flag (POSIX getopt),
// and every later argument is a recipient. Errors are *sysexits.Error with
// code 64.
func ParseArgs(args []string) (*Options, error) {
	o := &Options{Mode: ModeDeliver}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if strings.HasPrefix(a, "--") {
			if err := o.long(a, args, &i); err != nil {
				return nil, err
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		// A cluster of flags: -ti, -oi, -fa@b, -f a@b.
		for j := 1; j < len(a); j++ {
			c := a[j]
			kind, ok := flags[c]
			if !ok {
				return nil, usageErr("unknown option -%c", c)
			}
			var val string
			switch kind {
			case requiredArg:
				if j+1 < len(a) {
					val = a[j+1:]
				} else if i+1 < len(args) {
					i++
					val = args[i]
				} else {
					return nil, usageErr("option -%c needs an argument", c)
				}
				j = len(a)
			case optionalArg:
				val = a[j+1:]
				j = len(a)
			}
			if err := o.flag(c, val); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range args[i:] {
		if strings.HasPrefix(r, "-") {
			return nil, usageErr("recipient %q begins with '-': refused (a misplaced option?)", r)
		}
		if err := noLineBreak("recipient", r); err != nil {
			return nil, err
		}
		o.Recipients = append(o.Recipients, r)
	}
	return o, nil
}

func (o *Options) long(a string, args []string, i *int) error {
	name, val, hasVal := strings.Cut(a[2:], "=")
	switch name {
	case "wait":
		o.WaitSet = true
		o.Wait = DefaultWait
		if hasVal {
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return usageErr("--wait=%s: not a duration such as 30s or 2m", val)
			}
			o.Wait = d
		}
	case "read-envelope-from":
		// msmtp's: the envelope sender from the From header.
		if hasVal {
			return usageErr("--read-envelope-from takes no value")
		}
		o.ReadEnvelopeFrom = true
	case "config":
		if !hasVal {
			if *i+1 >= len(args) {
				return usageErr("--config needs a file")
			}
			*i++
			val = args[*i]
		}
		o.Config = val
	default:
		return usageErr("unknown option --%s", name)
	}
	return nil
}

func (o *Options) flag(c byte, val string) error {
	switch c {
	case 't':
		o.Extract = true
	case 'i':
		o.IgnoreDots = true
	case 'v':
		o.Verbose = true
	case 'f', 'r':
		if err := noLineBreak("sender", val); err != nil {
			return err
		}
		o.Sender, o.SenderSet = val, true
	case 'F':
		if err := noLineBreak("full name", val); err != nil {
			return err
		}
		o.FullName = val
	case 'N':
		n, err := ParseNotify(val)
		if err != nil {
			return err
		}
		o.Notify = n
	case 'R':
		switch strings.ToUpper(val) {
		case "FULL", "HDRS":
			o.Ret = strings.ToUpper(val)
		default:
			return usageErr("-R %s: use full or hdrs", val)
		}
	case 'V':
		if !ValidEnvID(val) {
			return usageErr("-V %q: an envelope ID is 1 to 100 printable ASCII characters without spaces", val)
		}
		o.EnvID = val
	case 'B':
		switch strings.ToUpper(val) {
		case "7BIT", "8BITMIME":
			o.Body = strings.ToUpper(val)
		default:
			return usageErr("-B %s: use 7BIT or 8BITMIME", val)
		}
	case 'C':
		o.Config = val
	case 'b':
		return o.mode(val)
	case 'o':
		// -oi is -i; every other -o option (-odi, -odb, -oem, -om, …) is
		// accepted and ignored: cronie passes -odi on every job.
		if val == "i" {
			o.IgnoreDots = true
		}
	case 'a':
		if val == "" || strings.ContainsAny(val, " \t\r\n\x00") {
			return usageErr("-a %q: name a [[smarthost]]", val)
		}
		o.Smarthost = val
	case 'A':
		if val != "c" && val != "m" {
			return usageErr("-A%s: use -Ac or -Am", val)
		}
	case 'q':
		if val != "" && !queueInterval().MatchString(val) {
			return usageErr("-q%s: only -q and -q<interval> (such as -q30m) are supported", val)
		}
		o.Mode = ModeFlush
	}
	return nil
}

func (o *Options) mode(val string) error {
	switch val {
	case "m":
		o.Mode = ModeDeliver
	case "p":
		o.Mode = ModePrintQueue
	case "s":
		o.Mode = ModeSMTP
	case "v":
		o.Mode = ModeVerify
	case "i":
		o.Mode = ModeNewaliases
	default:
		return usageErr("-b%s: unsupported mode (relay knows -bm, -bp, -bs, -bv, -bi)", val)
	}
	return nil
}

// noLineBreak refuses values that would let a caller inject header lines.
func noLineBreak(what, v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return usageErr("%s %q contains a line break or NUL: refused", what, v)
	}
	return nil
}

// String gives the mode's flag, for messages.
func (m Mode) String() string {
	return fmt.Sprint([]string{"-bm", "-bp", "-bs", "-bv", "-bi", "-q"}[m])
}

// DefaultWait is how long --wait (and -v) wait for delivery by default.
const DefaultWait = 60 * time.Second

// WaitDuration is how long the submitter waits for delivery.
func (o *Options) WaitDuration() time.Duration {
	if o.Wait > 0 {
		return o.Wait
	}
	return DefaultWait
}

// Message is the Submission to Enqueue for this command line. With
// --wait or -v the submitter delivers the message itself, so it is held
// from other runners for as long as the submitter waits.
func (o *Options) Message() Submission {
	m := o.Submission
	if o.WaitSet || o.Verbose {
		m.Hold = o.WaitDuration()
	}
	return m
}
