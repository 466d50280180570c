// Package synapse loads, templates, validates and generates Synapse homeserver configuration.
//
// The entrypoint needs to know, in milliseconds and without starting Python, whether the
// homeserver.yaml it is about to hand to Synapse will work: Synapse itself takes seconds to report a
// configuration error, silently ignores removed keys, and since 1.67 silently mints a new server
// identity when the signing key is missing. This package therefore:
//
//   - loads one or more config files (or directories of *.yaml) the way Synapse merges them, keeping
//     the file, line and column of every node (Load);
//   - expands ${VAR}, ${VAR:-default}, ${VAR:?message} and VAR_FILE secrets on the YAML node tree,
//     never on text, so a value can never change the structure of the document (Load, Render);
//   - checks the rules listed in Rules, gated by the Synapse version that will run (Validate);
//   - implements the `entrypoint check` and `entrypoint init` subcommands (RunCheck, RunInit) and
//     the reusable config generator behind init (GenerateInit, WriteInit).
//
// Nothing here reads the process environment directly: every lookup goes through an Env, and
// OSEnv is the single adapter to the real environment.
package synapse
