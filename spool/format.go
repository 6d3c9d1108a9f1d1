package spool

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/relaymail/relay/failure"
)

// FormatVersion is the version written in the format line of every queue
// file and envelope file this relay writes. See "Format versions" in the
// package documentation for what each version changed.
const FormatVersion = 2

const magic = "relay-spool"

// formatLine is the first line of every file this relay writes.
var formatLine = fmt.Sprintf("%s %d\n", magic, FormatVersion)

// encodeEnvelope is an envelope as written: the format line, then the
// envelope as one line of JSON. It starts a queue file (the arrival
// envelope) and is the whole of an envelope file (queue/ID.env).
func encodeEnvelope(env *Envelope) ([]byte, error) {
	return encodeLine(env, env.ID)
}

// envelopeFile is what an envelope file (queue/ID.env) holds: the
// envelope, and the queue file's size when it was written (the message
// and its arrival envelope), so that a count of the queue (relay queue
// stats, ScanSummaries) needs no stat of every queue file. An Envelope
// read back ignores the extra key; envelope files of older relays lack
// it, and the count stats those.
type envelopeFile struct {
	*Envelope
	QueueFileSize int64 `json:"queue_file_size,omitempty"`
}

// encodeEnvelopeFile encodes l's envelope for its envelope file.
func encodeEnvelopeFile(l *Locked) ([]byte, error) {
	return encodeLine(envelopeFile{Envelope: l.Env, QueueFileSize: l.offset + l.Size}, l.Env.ID)
}

// encodeLine is the format line and v's JSON line.
func encodeLine(v any, id string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("spool: encode envelope %s: %w", id, err)
	}
	out := make([]byte, 0, len(formatLine)+len(b)+1)
	out = append(out, formatLine...)
	out = append(out, b...)
	return append(out, '\n'), nil
}

// readHead reads the format line and the arrival envelope of an open queue
// file and returns the envelope and the offset where the message starts.
func readHead(r io.Reader) (*Envelope, int64, error) {
	envLine, version, off, err := scanHead(r)
	if err != nil {
		return nil, 0, err
	}
	env, err := decodeEnvelope(envLine, version)
	if err != nil {
		return nil, 0, err
	}
	return env, off, nil
}

// scanHead checks the format line of a queue file and returns its arrival
// envelope line, undecoded, the format version and the offset where the
// message starts.
func scanHead(r io.Reader) ([]byte, int, int64, error) {
	br := bufio.NewReaderSize(r, 4096)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: no format line", ErrCorrupt)
	}
	version, err := parseFormatLine(line)
	if err != nil {
		return nil, 0, 0, err
	}
	envLine, err := br.ReadBytes('\n')
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: truncated envelope", ErrCorrupt)
	}
	return envLine, version, int64(len(line) + len(envLine)), nil
}

// parseFormatLine returns the version of a format line, refusing one this
// relay cannot read.
func parseFormatLine(line []byte) (int, error) {
	rest, ok := bytes.CutPrefix(line, []byte(magic+" "))
	version, err := strconv.Atoi(string(bytes.TrimSuffix(rest, []byte("\n"))))
	if !ok || err != nil || version < 0 {
		return 0, fmt.Errorf("%w: bad format line %.40q", ErrCorrupt, line)
	}
	if version > FormatVersion {
		return 0, fmt.Errorf("%w (format %d, this relay reads %d)", ErrNewer, version, FormatVersion)
	}
	return version, nil
}

// decodeEnvelopeFile decodes an envelope file (queue/ID.env). Format 1
// wrote the JSON line alone; later formats start with a format line.
func decodeEnvelopeFile(b []byte) (*Envelope, error) {
	if len(b) > 0 && b[0] == '{' {
		return decodeEnvelope(b, 1)
	}
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: envelope file without envelope", ErrCorrupt)
	}
	version, err := parseFormatLine(line)
	if err != nil {
		return nil, err
	}
	return decodeEnvelope(rest, version)
}

// decodeEnvelope decodes an envelope line of the given format version into
// the current Envelope.
func decodeEnvelope(b []byte, version int) (*Envelope, error) {
	env := new(Envelope)
	if err := decodeEnvelopeJSON(b, env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrCorrupt, err)
	}
	if !ValidID(env.ID) || len(env.Recipients) == 0 {
		return nil, fmt.Errorf("%w: envelope without ID or recipients", ErrCorrupt)
	}
	if version <= 1 {
		var old format1Envelope
		if err := json.Unmarshal(b, &old); err != nil {
			return nil, fmt.Errorf("%w: envelope: %v", ErrCorrupt, err)
		}
		old.convert(env)
	}
	return env, nil
}

// format1Envelope is what format 1 stored as text and format 2 stores as
// failure structures: a recipient's reason (reply or failure), the
// envelope's last error and whether it was relay's own side.
type format1Envelope struct {
	Recipients []struct {
		Reason string `json:"reason"`
	} `json:"recipients"`
	LastError string `json:"last_error"`
	OwnSide   bool   `json:"own_side"`
}

// convert puts the failures of a format 1 envelope into env, decoded from
// the same line. Format 1 did not store a recipient's stage: a reason that
// is the last error's reply gets its stage; any other gets the one mailq
// assumed for it (MAIL when the message waited for relay's own side, else
// RCPT), so that it is classified and explained as before. A delivered
// recipient's reason is its 250 reply.
func (old *format1Envelope) convert(env *Envelope) {
	env.LastFailure = failure.ParseFormat1Error(old.LastError)
	assumed := failure.StageRcpt
	if old.OwnSide {
		assumed = failure.StageMail
	}
	for i := range env.Recipients {
		if i >= len(old.Recipients) {
			break
		}
		rc, reason := &env.Recipients[i], old.Recipients[i].Reason
		switch {
		case reason == "":
		case rc.Status == Delivered:
			rc.Reply = reason
		default:
			f := failure.ParseFormat1Reason(assumed, reason)
			if last := env.LastFailure; last != nil && last.Stage != "" && last.ReplyLine() == f.ReplyLine() {
				f.Stage = last.Stage
			}
			rc.Failure = f
		}
	}
}
