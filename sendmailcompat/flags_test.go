package sendmailcompat_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymail/relay/sendmailcompat"
	"github.com/relaymail/relay/sysexits"
)

func TestParseArgs(t *testing.T) {
	type O = sendmailcompat.Options
	type S = sendmailcompat.Submission
	tests := []struct {
		args []string
		want O
	}{
		{nil, O{}},
		{[]string{"-t", "-i"}, O{Submission: S{Extract: true, IgnoreDots: true}}},
		{[]string{"-ti"}, O{Submission: S{Extract: true, IgnoreDots: true}}},
		{[]string{"-it"}, O{Submission: S{Extract: true, IgnoreDots: true}}},
		{[]string{"-oi"}, O{Submission: S{IgnoreDots: true}}},
		{[]string{"-o", "i"}, O{Submission: S{IgnoreDots: true}}},
		{[]string{"-odi", "-odb", "-oem", "-oep", "-oeq", "-om", "-oQ/tmp"}, O{}},
		{[]string{"-fa@b.example", "x@y"}, O{Submission: S{Sender: "a@b.example", SenderSet: true, Recipients: []string{"x@y"}}}},
		{[]string{"-f", "Name <a@b>"}, O{Submission: S{Sender: "Name <a@b>", SenderSet: true}}},
		{[]string{"-r", "<>"}, O{Submission: S{Sender: "<>", SenderSet: true}}},
		{[]string{"-FCronDaemon"}, O{Submission: S{FullName: "CronDaemon"}}},
		{[]string{"-F", "Cron Daemon"}, O{Submission: S{FullName: "Cron Daemon"}}},
		{[]string{"-N", "success,delay,failure", "-R", "hdrs", "-V", "env-1"}, O{Submission: S{Notify: []string{"SUCCESS", "DELAY", "FAILURE"}, Ret: "HDRS", EnvID: "env-1"}}},
		{[]string{"-Nnever", "-Rfull"}, O{Submission: S{Notify: []string{"NEVER"}, Ret: "FULL"}}},
		{[]string{"-B8BITMIME"}, O{Submission: S{Body: "8BITMIME"}}},
		{[]string{"-B", "7bit"}, O{Submission: S{Body: "7BIT"}}},
		{[]string{"-bm"}, O{}},
		{[]string{"-bp"}, O{Mode: sendmailcompat.ModePrintQueue}},
		{[]string{"-bs"}, O{Mode: sendmailcompat.ModeSMTP}},
		{[]string{"-bv", "root"}, O{Submission: S{Recipients: []string{"root"}}, Mode: sendmailcompat.ModeVerify}},
		{[]string{"-bi"}, O{Mode: sendmailcompat.ModeNewaliases}},
		{[]string{"-q"}, O{Mode: sendmailcompat.ModeFlush}},
		{[]string{"-q30m"}, O{Mode: sendmailcompat.ModeFlush}},
		{[]string{"-v"}, O{Verbose: true}},
		{[]string{"-C", "/etc/x.toml"}, O{Config: "/etc/x.toml"}},
		{[]string{"-C/etc/x.toml"}, O{Config: "/etc/x.toml"}},
		{[]string{"-O", "DeliveryMode=b", "-h", "17", "-L", "tag", "-m", "-n", "-G", "-U", "-Ac", "-Am", "-X", "/tmp/log", "-em", "-c", "-x"}, O{}},
		{[]string{"--wait"}, O{WaitSet: true, Wait: 60 * time.Second}},
		{[]string{"--wait=5s"}, O{WaitSet: true, Wait: 5 * time.Second}},
		{[]string{"--", "a@b", "c@d"}, O{Submission: S{Recipients: []string{"a@b", "c@d"}}}},
		// POSIX getopt: the first non-flag ends the flags.
		{[]string{"a@b", "c@d"}, O{Submission: S{Recipients: []string{"a@b", "c@d"}}}},
		{[]string{"a@b, B <b@x>"}, O{Submission: S{Recipients: []string{"a@b, B <b@x>"}}}},
	}
	for _, tt := range tests {
		got, err := sendmailcompat.ParseArgs(tt.args)
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("ParseArgs(%q) =\n %+v, want\n %+v", tt.args, *got, tt.want)
		}
	}
}

func TestParseArgs_Errors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"-z"}, "unknown option -z"},
		{[]string{"-tz"}, "unknown option -z"},
		{[]string{"-f"}, "option -f needs an argument"},
		{[]string{"-I"}, "unknown option -I"},
		{[]string{"-bd"}, "-bd: unsupported mode"},
		{[]string{"-Bbinary"}, "-B binary: use 7BIT or 8BITMIME"},
		{[]string{"-N", "sometimes"}, "-N sometimes"},
		{[]string{"-N", "never,success"}, "never cannot be combined"},
		{[]string{"-R", "body"}, "-R body: use full or hdrs"},
		{[]string{"-V", "has space"}, "envelope ID"},
		{[]string{"-Ax"}, "-Ax: use -Ac or -Am"},
		{[]string{"-qRexample.com"}, "only -q and -q<interval>"},
		{[]string{"--wait=soon"}, "--wait=soon: not a duration"},
		{[]string{"--frobnicate"}, "unknown option --frobnicate"},
		{[]string{"a@b", "-f", "x@y"}, `recipient "-f" begins with '-'`},
		{[]string{"--", "-oQ/tmp/evil"}, `recipient "-oQ/tmp/evil" begins with '-'`},
		{[]string{"-f", "a@b\r\nBcc: victim@x"}, "line break"},
		{[]string{"-F", "Name\nBcc: victim@x"}, "line break"},
		{[]string{"a@b\nBcc: victim@x"}, "line break"},
	}
	for _, tt := range tests {
		_, err := sendmailcompat.ParseArgs(tt.args)
		if err == nil {
			t.Errorf("ParseArgs(%q): no error", tt.args)
			continue
		}
		if code := sysexits.Code(err, -1); code != sysexits.Usage {
			t.Errorf("ParseArgs(%q): exit %d, want 64", tt.args, code)
		}
		if !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseArgs(%q): %q, want one line containing %q", tt.args, err, tt.msg)
		}
	}
}
