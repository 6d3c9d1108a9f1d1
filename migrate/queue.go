package migrate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/relaymail/relay/mailaddr"
	"github.com/relaymail/relay/spool"
	"github.com/relaymail/relay/sysexits"
)

// QueueDir is where FORMAT keeps its queue by default: nullmailer's
// /var/spool/nullmailer/queue, dma's /var/spool/dma (or the SPOOLDIR of
// dma.conf at confPath), msmtpq's ~/.msmtp.queue.
func QueueDir(format, confPath, home string) (string, error) {
	switch format {
	case "nullmailer":
		return "/var/spool/nullmailer/queue", nil
	case "dma":
		if b, err := os.ReadFile(confPath); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(strings.SplitN(l, "#", 2)[0]); len(f) == 2 && f[0] == "SPOOLDIR" {
					return f[1], nil
				}
			}
		}
		return "/var/spool/dma", nil
	case "msmtp":
		return filepath.Join(home, ".msmtp.queue"), nil
	}
	return "", sysexits.New(sysexits.Usage, "--queue: %s has no queue relay can take over (ssmtp has none; Postfix: postqueue -f before switching)", format)
}

// QueueOptions says where the queue's mail goes.
type QueueOptions struct {
	Spool *spool.Spool
	// Drop: commit through the maildrop (root moving mail into a spool
	// that belongs to relay: the pickup gives the message to relay).
	Drop bool
	UID  int
	User string
	Now  func() time.Time
}

// Moved is one message taken over.
type Moved struct {
	Files      []string // the source files, removed
	ID         string   // relay's queue ID (the maildrop's with Drop)
	Sender     string
	Recipients []string
	Removed    error // the source files could not all be removed: the message is in relay's queue twice
}

// Left is a source file that stays where it was.
type Left struct {
	File string
	Why  string
}

// queued is a message read from a source queue.
type queued struct {
	files      []string
	sender     string
	recipients []string
	content    []byte
}

// ImportQueue moves the messages of FORMAT's queue in dir into the spool:
// for each, the spool's durable enqueue (Draft.Commit: fsync, rename,
// directory fsync), then the source files are removed. A file that cannot
// be parsed is left and reported; an error of the spool stops the import
// (the message being moved stays in the source queue).
func ImportQueue(format, dir string, opts QueueOptions) ([]Moved, []Left, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		code := sysexits.NoInput
		if errors.Is(err, fs.ErrPermission) {
			code = sysexits.NoPerm
		}
		return nil, nil, sysexits.Wrap(code, fmt.Errorf("--queue: cannot read %s: %w", dir, pathErr(err)))
	}
	var msgs []queued
	var left []Left
	var err error
	switch format {
	case "nullmailer":
		msgs, left, err = readNullmailerQueue(dir)
	case "dma":
		msgs, left, err = readDmaQueue(dir)
	case "msmtp":
		msgs, left, err = readMsmtpQueue(dir)
	default:
		_, err = QueueDir(format, "", "")
	}
	if err != nil {
		return nil, nil, err
	}
	var moved []Moved
	for _, m := range msgs {
		if why := checkAddresses(m); why != "" {
			for _, f := range m.files {
				left = append(left, Left{f, why})
			}
			continue
		}
		id, err := commit(m, opts)
		if err != nil {
			return moved, left, sysexits.Wrap(sysexits.TempFail, fmt.Errorf("--queue: %s: %w (it stays where it is)", m.files[0], err))
		}
		mv := Moved{Files: m.files, ID: id, Sender: m.sender, Recipients: m.recipients}
		var errs []error
		for _, f := range m.files {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		syncDir(dir)
		mv.Removed = errors.Join(errs...)
		moved = append(moved, mv)
	}
	return moved, left, nil
}

func checkAddresses(m queued) string {
	if m.sender != "" {
		if err := mailaddr.Valid(m.sender); err != nil {
			return fmt.Sprintf("sender %q: %v", m.sender, err)
		}
	}
	if len(m.recipients) == 0 {
		return "no recipients"
	}
	for _, r := range m.recipients {
		if err := mailaddr.Valid(r); err != nil {
			return fmt.Sprintf("recipient %q: %v", r, err)
		}
	}
	return ""
}

// commit puts one message into the spool with the spool's own enqueue.
func commit(m queued, opts QueueOptions) (string, error) {
	newDraft := opts.Spool.NewDraft
	if opts.Drop {
		newDraft = opts.Spool.NewDrop
	}
	d, err := newDraft()
	if err != nil {
		return "", err
	}
	defer d.Abort()
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	env := &spool.Envelope{Sender: m.sender, UID: opts.UID, User: opts.User, Arrival: now, NextAttempt: now}
	for _, r := range m.recipients {
		env.Recipients = append(env.Recipients, spool.Recipient{Address: r, Status: spool.Pending})
	}
	if err := d.WriteEnvelope(env); err != nil {
		return "", err
	}
	if _, err := d.Write(m.content); err != nil {
		return "", err
	}
	if err := d.Commit(); err != nil {
		return "", err
	}
	return d.ID, nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// regularFiles lists the plain files of dir, sorted (the queues' names
// sort by arrival).
func regularFiles(dir string) ([]string, []Left, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, sysexits.Wrap(sysexits.NoInput, fmt.Errorf("--queue: %w", err))
	}
	var out []string
	var left []Left
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() {
			left = append(left, Left{p, "not a regular file"})
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, left, nil
}

// readNullmailerQueue: each file is the sender on the first line, one
// recipient a line, an empty line, then the message (nullmailer-queue(8)).
func readNullmailerQueue(dir string) ([]queued, []Left, error) {
	files, left, err := regularFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	var out []queued
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			left = append(left, Left{f, pathErr(err).Error()})
			continue
		}
		head, body, ok := bytes.Cut(b, []byte("\n\n"))
		if !ok {
			left = append(left, Left{f, "no empty line after the envelope: not a nullmailer queue file"})
			continue
		}
		lines := strings.Split(string(head), "\n")
		m := queued{files: []string{f}, sender: strings.TrimSpace(lines[0]), content: body}
		for _, r := range lines[1:] {
			if r = strings.TrimSpace(r); r != "" {
				m.recipients = append(m.recipients, r)
			}
		}
		out = append(out, m)
	}
	return out, left, nil
}

// readDmaQueue: a message is a Q file per recipient ("ID: ", "Sender: ",
// "Recipient: " lines) with an M file each (links of one data file),
// named Q<id>.<n> and M<id>.<n>; one relay message is made of the
// recipients of one id and sender.
func readDmaQueue(dir string) ([]queued, []Left, error) {
	files, left, err := regularFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	byKey := map[string]*queued{}
	var order []string
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasPrefix(base, "Q") {
			if !strings.HasPrefix(base, "M") {
				left = append(left, Left{f, "not a dma queue file (Q or M)"})
			}
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			left = append(left, Left{f, pathErr(err).Error()})
			continue
		}
		var id, sender, rcpt string
		haveSender := false
		bad := ""
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				bad = fmt.Sprintf("line %q is not Key: value", l)
				break
			}
			v = strings.TrimSpace(v)
			switch k {
			case "ID":
				id = v
			case "Sender":
				sender, haveSender = v, true
			case "Recipient":
				rcpt = v
			}
		}
		if bad == "" && (id == "" || rcpt == "" || !haveSender) {
			bad = "ID, Sender or Recipient missing"
		}
		mfile := filepath.Join(dir, "M"+base[1:])
		if bad == "" {
			if _, err := os.Stat(mfile); err != nil {
				bad = "its message file " + mfile + " is missing"
			}
		}
		if bad != "" {
			left = append(left, Left{f, bad})
			continue
		}
		msgID, _, _ := strings.Cut(id, ".")
		key := msgID + "\x00" + sender
		m := byKey[key]
		if m == nil {
			content, err := os.ReadFile(mfile)
			if err != nil {
				left = append(left, Left{f, pathErr(err).Error()})
				continue
			}
			m = &queued{sender: sender, content: content}
			byKey[key] = m
			order = append(order, key)
		}
		m.files = append(m.files, f, mfile)
		m.recipients = append(m.recipients, rcpt)
	}
	var out []queued
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out, left, nil
}

// readMsmtpQueue: msmtpq keeps ID.mail (the message) and ID.msmtp (the
// msmtp arguments, on one line, as msmtpq was called).
func readMsmtpQueue(dir string) ([]queued, []Left, error) {
	files, left, err := regularFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	var out []queued
	for _, f := range files {
		if !strings.HasSuffix(f, ".msmtp") {
			if !strings.HasSuffix(f, ".mail") {
				left = append(left, Left{f, "not an msmtpq queue file (.mail, .msmtp)"})
			}
			continue
		}
		mailFile := strings.TrimSuffix(f, ".msmtp") + ".mail"
		args, err := os.ReadFile(f)
		if err != nil {
			left = append(left, Left{f, pathErr(err).Error()})
			continue
		}
		content, err := os.ReadFile(mailFile)
		if err != nil {
			left = append(left, Left{f, "its message file: " + pathErr(err).Error()})
			continue
		}
		m, why := msmtpArgs(strings.Fields(string(args)), content)
		if why != "" {
			left = append(left, Left{f, why})
			continue
		}
		m.files = []string{f, mailFile}
		out = append(out, m)
	}
	return out, left, nil
}

// msmtpArgs reads msmtp's command line: -f/--from sender, -t (recipients
// from the header, Bcc then removed), -- and the recipients; other
// options are msmtp's own (-a account, -oi, -C file ...).
func msmtpArgs(args []string, content []byte) (queued, string) {
	m := queued{content: content}
	fromHeader := false
	extract := false
	senderSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			m.recipients = append(m.recipients, args[i+1:]...)
			i = len(args)
		case a == "-f" || a == "-r" || a == "--from":
			if i+1 >= len(args) {
				return m, a + " without an address"
			}
			i++
			m.sender, senderSet = args[i], true
		case strings.HasPrefix(a, "--from="):
			m.sender, senderSet = strings.TrimPrefix(a, "--from="), true
		case strings.HasPrefix(a, "-f") && len(a) > 2:
			m.sender, senderSet = a[2:], true
		case a == "-t" || a == "--read-recipients":
			extract = true
		case a == "--read-envelope-from":
			fromHeader = true
		case a == "-a" || a == "-C" || a == "--account" || a == "--file" || a == "-N" || a == "-R" || a == "-V" || a == "-X" || a == "-L" || a == "-F" || a == "-O" || a == "-B":
			i++ // their values are msmtp's business
		case strings.HasPrefix(a, "-"):
			// -i, -oi, -oem, --account=..., and the like.
		default:
			m.recipients = append(m.recipients, a)
		}
	}
	if m.sender == "<>" {
		m.sender = ""
	}
	msg, err := mail.ReadMessage(bytes.NewReader(content))
	if err != nil && (extract || !senderSet || fromHeader) {
		return m, "cannot read the message header: " + err.Error()
	}
	if !senderSet || fromHeader {
		// msmtp would take the account's from; the From header is what
		// the sender wrote.
		l, err := msg.Header.AddressList("From")
		if err != nil || len(l) == 0 {
			return m, "no -f and no usable From header: the envelope sender is unknown"
		}
		m.sender = l[0].Address
	}
	if extract {
		for _, h := range []string{"To", "Cc", "Bcc"} {
			if l, err := msg.Header.AddressList(h); err == nil {
				for _, a := range l {
					m.recipients = append(m.recipients, a.Address)
				}
			}
		}
		m.content = withoutBcc(content)
	}
	return m, ""
}

// withoutBcc removes the Bcc fields from a message's header.
func withoutBcc(content []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewReader(bytes.NewReader(content))
	inBcc := false
	for {
		line, err := sc.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			break
		}
		t := bytes.TrimRight(line, "\r\n")
		if len(t) == 0 { // the end of the header
			out.Write(line)
			rest, _ := io.ReadAll(sc)
			out.Write(rest)
			break
		}
		if t[0] == ' ' || t[0] == '\t' {
			if !inBcc {
				out.Write(line)
			}
			continue
		}
		inBcc = len(t) >= 4 && strings.EqualFold(string(t[:4]), "bcc:")
		if !inBcc {
			out.Write(line)
		}
		if err != nil {
			break
		}
	}
	return out.Bytes()
}
