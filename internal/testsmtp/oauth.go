package testsmtp

import (
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TokenAuth serves XOAUTH2 and OAUTHBEARER for a FaultServer
// (ServerConfig.AuthServer) whose tokens valid judges (an authorization
// server's introspection, say; it may block to hold the AUTH). A refused
// token gets the JSON error challenge, then 535 5.7.8, as Google does.
func TokenAuth(valid func(user, token string) bool) func(string, func(AuthSeen) error) sasl.Server {
	return func(mech string, check func(AuthSeen) error) sasl.Server {
		judge := func(user, tok string) error {
			err := check(AuthSeen{User: user, Pass: tok})
			if err == nil && !valid(user, tok) {
				err = errors.New("token not active")
			}
			return err
		}
		switch mech {
		case "XOAUTH2":
			return &xoauth2Server{judge: judge}
		case "OAUTHBEARER":
			return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
				if judge(o.Username, o.Token) != nil {
					return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
				}
				return nil
			})
		}
		return nil
	}
}

var errTokenRefused = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}

type xoauth2Server struct {
	judge  func(user, tok string) error
	failed bool
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.failed {
		return nil, true, errTokenRefused
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	var user, tok string
	for _, f := range strings.Split(string(resp), "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			tok = v
		}
	}
	if s.judge(user, tok) != nil {
		s.failed = true
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	return nil, true, nil
}
