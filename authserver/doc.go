// Package authserver is mss-login's auth server: a reverse proxy in front of ComfyUI (HTTP and
// WebSocket) that authenticates every request with one authenticator, decides it with one
// policy (authserver/policy), enforces IP rules and lockout (authserver/ipaccess), and serves
// login, registration, tokens and the mss-login API.
//
// It owns what a request meets between the client and ComfyUI:
//   - the one entry point and its decision (server.go, request.go, decide.go, routes.go), the
//     proxy and its sockets (proxy.go, sockets.go) and forward auth for gateways
//     (forwardauth.go);
//   - signing in and staying signed in: passwords, MFA, the guest, sessions and API tokens
//     (login.go, mfa.go, sessions.go, tokens.go, credentials.go), failed attempts and their
//     timing (attempts.go, timing.go);
//   - keeping ComfyUI users apart: each prompt's owner, the actions and answers limited to
//     the caller's prompts (prompts.go, prompt_actions.go, prompt_answers.go, with the pure
//     parts in authserver/isolation), and the models each user may see (models.go);
//   - the pages and the admin surfaces: the login, account and error pages (pages.go,
//     account.go), the admin console (console*.go), the admin JSON API (users.go, grants.go,
//     audit.go, status.go) and how every answer is shaped for a browser or an API client
//     (answer.go).
//
// The users database is internal/store; a snapshot of the tables every request consults is
// kept in memory (cache.go).
package authserver
