package testsmtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// trackListener counts connections and plays the greeting faults, which
// go-smtp's server cannot.
type trackListener struct {
	net.Listener
	s *FaultServer
}

func (l *trackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		s.mu.Lock()
		s.conns++
		s.open++
		s.connIDs[c.RemoteAddr().String()] = s.conns
		tc := &trackConn{Conn: c, s: s}
		s.live = append(s.live, tc)
		s.mu.Unlock()
		cfg := s.Config()
		switch {
		case cfg.Greeting != nil:
			io.WriteString(tc, ReplyText(cfg.Greeting)+"\r\n")
			s.wg.Add(1)
			go func() {
				// Wait for the client to go, so that it reads the reply
				// and not a reset connection.
				defer s.wg.Done()
				tc.SetReadDeadline(time.Now().Add(3 * time.Second))
				io.Copy(io.Discard, tc)
				tc.Close()
			}()
			continue
		case cfg.Hang == HangGreeting:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				done := make(chan struct{})
				go func() { io.Copy(io.Discard, tc); close(done) }()
				select {
				case <-done: // the client gave up
				case <-s.release:
				case <-time.After(HangMax):
				}
				tc.Close()
				<-done
			}()
			continue
		}
		return tc, nil
	}
}

// trackConn notices when a connection is closed, for the leak check.
type trackConn struct {
	net.Conn
	s    *FaultServer
	once sync.Once
}

func (c *trackConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.open--
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *FaultServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	id := s.connIDs[c.Conn().RemoteAddr().String()]
	s.helos = append(s.helos, c.Hostname())
	cfg := s.cfg
	s.mu.Unlock()
	if cfg.Hang == HangEHLO {
		s.hang()
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "too late"}
	}
	if cfg.EHLO != nil {
		return nil, cfg.EHLO
	}
	return &session{s: s, conn: c, id: id}, nil
}

// session is one SMTP session of a FaultServer.
type session struct {
	s    *FaultServer
	conn *smtp.Conn
	id   int
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string { return se.s.Config().AuthMechs }

func (se *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			return se.authenticate(AuthSeen{Mech: mech, Identity: identity, User: user, Pass: pass})
		}), nil
	case sasl.Login:
		return &loginServer{prompts: se.s.Config().LoginPrompts, auth: func(user, pass string) error {
			return se.authenticate(AuthSeen{Mech: mech, User: user, Pass: pass})
		}}, nil
	}
	if f := se.s.Config().AuthServer; f != nil {
		if srv := f(mech, func(a AuthSeen) error { a.Mech = mech; return se.authenticate(a) }); srv != nil {
			return srv, nil
		}
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) authenticate(a AuthSeen) error {
	s := se.s
	a.Conn = se.id
	s.mu.Lock()
	s.auths = append(s.auths, a)
	cfg := s.cfg
	s.mu.Unlock()
	if cfg.AuthErr != nil {
		return cfg.AuthErr
	}
	if cfg.Password != "" && a.Pass != cfg.Password {
		return smtp.ErrAuthFailed
	}
	return nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	s := se.s
	s.mu.Lock()
	s.mails = append(s.mails, from)
	s.mailConn = append(s.mailConn, se.id)
	cfg := s.cfg
	s.mu.Unlock()
	if e, ok := cfg.MailErr[from]; ok {
		return e
	}
	if e, ok := cfg.MailErr["*"]; ok {
		return e
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := se.s
	s.mu.Lock()
	s.rcpts = append(s.rcpts, to)
	cfg := s.cfg
	s.mu.Unlock()
	if cfg.Hang == HangRcpt {
		s.hang()
	}
	if e, ok := cfg.RcptErr[to]; ok {
		return e
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	s := se.s
	cfg := s.Config()
	if cfg.DropMidData {
		io.CopyN(io.Discard, r, 4096)
		se.conn.Conn().Close()
		return errors.New("dropped mid-DATA")
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch {
	case cfg.DropAtDot:
		se.conn.Conn().Close()
		return errors.New("dropped at the final dot")
	case cfg.Hang == HangDot:
		s.hang()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "too late"}
	case cfg.DataErr != nil:
		return cfg.DataErr
	case cfg.MaxLineOctets > 0:
		for _, l := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSuffix(l, []byte("\r"))) > cfg.MaxLineOctets {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Line too long"}
			}
		}
	}
	s.mu.Lock()
	s.messages = append(s.messages, Received{Conn: se.id, From: se.from, To: append([]string(nil), se.to...), Body: body})
	s.mu.Unlock()
	if cfg.DotDelay > 0 {
		select {
		case <-time.After(cfg.DotDelay):
		case <-s.release:
		}
	}
	return nil
}

func (se *session) Reset() {
	se.from = ""
	se.to = nil
}

func (se *session) Logout() error { return nil }

// loginServer is AUTH LOGIN with configurable prompts (go-sasl has no LOGIN
// server). A client's initial response is taken as the user name.
type loginServer struct {
	prompts []string
	auth    func(user, pass string) error
	step    int
	user    string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if resp == nil {
			return []byte(l.prompts[0]), false, nil
		}
		l.step++
		l.user = string(resp)
		return []byte(l.prompts[1]), false, nil
	case 2:
		l.user = string(resp)
		return []byte(l.prompts[1]), false, nil
	case 3:
		return nil, true, l.auth(l.user, string(resp))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
