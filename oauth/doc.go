// Package oauth gets relay the OAuth 2.0 access tokens it logs in to a
// smarthost with (XOAUTH2, OAUTHBEARER): Microsoft 365, Outlook.com,
// Gmail, Google Workspace, or any authorization server ("generic"),
// configured per smarthost in [smarthost.oauth] (config.OAuth). The
// flows are golang.org/x/oauth2's (Config.DeviceAuth and
// DeviceAccessToken, AuthCodeURL and Exchange with PKCE, refresh through
// Config.TokenSource, clientcredentials, jwt), driven by package
// oauth/flow, which adds what they lack: the loopback or pasted
// redirect, the HTTP client, and errors that say what to do. This
// package keeps the grant and the cache, and is all that relay links:
// the flows run in the helper binary relay-oauth (helper.go says why:
// net/http's initialisation would cost every sendmail run).
//
// # The token file
//
// One JSON file per smarthost (token_file; default SPOOL/oauth/NAME.json)
// holds the grant: the refresh token and when it was issued, the cached
// access token and its expiry, the account and client it belongs to, and
// the last error of the token endpoint. It is written as the spool's
// owner (the daemon user), mode 0600, atomically: a temporary file in the
// same directory, fsync, rename over the old one, fsync of the directory.
// A crash leaves the old file or the new one, never half of either.
//
// # Getting a token for a connection
//
// [Account.Token], called by package relay for each new connection,
// reads the file and returns the cached access token while it is valid
// for at least [RefreshMargin] more. Otherwise [Fetch] runs relay-oauth,
// which takes the account's lock, reads the file again (another process
// may have refreshed it meanwhile) and else asks the token endpoint: the refresh token (device, authcode), the client
// secret (client_credentials) or a JWT signed with the service account's
// key (service_account, RFC 7523), and stores the answer — a rotated
// refresh token with it — durably before it returns the new access token.
// So a crash after the provider rotated the refresh token and before the
// access token was used loses nothing: the next process finds the new
// refresh token (and the access token) on disk. Only a crash between the
// provider's answer and the rename can lose a rotated token: a window of
// one write, where the provider's own grace for the old token (Microsoft
// keeps it valid) is the remedy.
//
// The lock is twofold: a mutex per token file for the workers of one
// process (max_connections), and flock(2) on token_file.lock for the
// processes beside it (the daemon, a sendmail --wait, relay queue run,
// relay oauth login). The second to come waits, then finds the first
// one's token in the file: n workers cause one refresh, not n. A request
// to the token endpoint is bounded by [HTTPTimeout], so a hanging endpoint
// costs a deferral, not a stuck runner.
//
// # Failures
//
// Every error is an *[Error]: a refused grant (invalid_grant: revoked,
// expired, the password changed) or no grant yet names the command that
// fixes it, relay oauth login NAME; an endpoint that cannot be reached or
// fails says that relay tries again. Package relay turns them into
// failures of relay's own side (stage local): the mail waits, is never
// bounced, and relay check exits 75. The last error is also written into
// the token file, for relay oauth status and relay check.
//
// # What is never shown
//
// No access or refresh token, client secret or private key appears in an
// error, a log line, relay oauth status or relay check: errors are made
// here from the endpoint's error code and description, never from the
// body of its answer.
package oauth
