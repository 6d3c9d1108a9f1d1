package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/relaymail/relay/oauth"
)

// Main is the helper relay-oauth: relay runs it as "relay-oauth token"
// (the answer, a token or an error, as JSON on stdout) or "relay-oauth
// login" (interactive, on relay's terminal), with the request in the
// environment (oauth.RequestEnv). It returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[1] != "token" && args[1] != "login" {
		fmt.Fprintf(stderr, "%s: run by relay (relay oauth login, delivery): %s token|login\n", oauth.HelperName, oauth.HelperName)
		return 64
	}
	a, err := oauth.ReadRequest()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", oauth.HelperName, err)
		return 64
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if args[1] == "login" {
		if err := Login(ctx, a, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "relay: %v\n", err)
			return 75
		}
		return 0
	}
	tok, err := Token(ctx, a)
	resp := oauth.Response{Token: &tok}
	if err != nil {
		resp = oauth.Response{Error: describe(a, err, a.Conf.TokenURL)}
	}
	json.NewEncoder(stdout).Encode(resp)
	return 0
}
