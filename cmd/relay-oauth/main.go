// Command relay-oauth is relay's OAuth 2.0 helper: relay runs it, from
// beside its own executable, for an access token it has no valid copy of
// and for relay oauth login. It holds the HTTP client and the flows of
// golang.org/x/oauth2 (package oauth/flow), which relay itself does not
// link, so that no sendmail run pays for their initialisation. It is no
// command for people: relay oauth is.
package main

import (
	"os"

	"github.com/relaymail/relay/oauth/flow"
)

func main() {
	os.Exit(flow.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
