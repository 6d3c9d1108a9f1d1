package relay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// passwordMechanisms are the mechanisms relay chooses from by itself,
// strongest first.
var passwordMechanisms = []string{"PLAIN", "LOGIN"}

// chooseMechanism picks the mechanism named by auth, or else the strongest
// password mechanism the server offers.
func chooseMechanism(auth string, offered func(string) bool) (string, error) {
	if auth != "" {
		mech := strings.ToUpper(auth)
		if !offered(mech) {
			return "", fmt.Errorf("auth = %q, but the server does not offer %s", auth, mech)
		}
		return mech, nil
	}
	for _, m := range passwordMechanisms {
		if offered(m) {
			return m, nil
		}
	}
	return "", errors.New("the server offers no AUTH mechanism relay supports (PLAIN, LOGIN)")
}

func saslClient(mech, user, pass string) (sasl.Client, error) {
	switch mech {
	case "PLAIN":
		return sasl.NewPlainClient("", user, pass), nil
	case "LOGIN":
		return &loginClient{user: user, pass: pass}, nil
	}
	return nil, fmt.Errorf("AUTH %s is not supported yet", mech)
}

// loginClient is AUTH LOGIN that answers the first challenge with the user
// name and the second with the password, whatever their text: servers send
// "Username:", "User Name", "VXNlcm5hbWU6" decoded or localised prompts, and
// go-sasl's client accepts only the exact "Password:".
type loginClient struct {
	user, pass string
	step       int
}

func (c *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.user), nil
	case 2:
		return []byte(c.pass), nil
	}
	// A third challenge: answering nil would make go-smtp report success
	// without a 235, so fail the exchange instead.
	return nil, errors.New("AUTH LOGIN: unexpected third challenge")
}
