// Package status is the entrypoint's window for operators: it tracks which phase the supervisor
// is in (waiting for Keybase, cloning the config repository, validating, Synapse migrating,
// ready, restarting, ...) and serves it over HTTP so a Docker HEALTHCHECK, Akash or a person with
// curl can tell "not ready yet, and why" from "broken".
//
// The HTTP surface is deliberately small:
//
//	GET /healthz  200 "ok" while the entrypoint process is alive
//	GET /readyz   200 "ready", or 503 with one plain-text line "not ready: <why>";
//	              "?verbose" or "Accept: application/json" returns the JSON form
//	GET /metrics  Prometheus metrics from a private registry (never the global one)
//
// Secrets: everything this package shows comes from its callers. Reasons passed to
// Tracker.Set, Tracker.SetRestarting and Tracker.SetConfigInvalid, and commits passed to
// Metrics.SetConfigCommit, MUST already be redacted (URLs without credentials, no paper keys,
// passwords, tokens or Synapse secrets): the status endpoint may be reachable by anyone who can
// reach the container, and the package has no way to recognise a secret it is handed.
//
// The healthcheck client (Check, RunHealthcheck) backs `entrypoint healthcheck`, which the image's
// HEALTHCHECK runs inside the container; that is why the server listens on loopback by default.
package status
