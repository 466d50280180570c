package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Settings is every environment variable the entrypoint reads, in one place. `entrypoint --help`
// prints this table, so the desc tags are the operator's documentation.
type Settings struct {
	LogLevel     string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat    string        `envconfig:"LOG_FORMAT" default:"auto" desc:"json, console, or auto (console on a terminal, json otherwise)"`
	StopTimeout  time.Duration `envconfig:"STOP_TIMEOUT" default:"10s" desc:"in command mode, how long a child may take to exit after SIGTERM/SIGINT before it is SIGKILLed"`
	DrainTimeout time.Duration `envconfig:"DRAIN_TIMEOUT" default:"5s" desc:"after the main process ends, how long leftover processes get after SIGTERM before SIGKILL"`
}

// loadSettings reads Settings from the environment; a malformed value is a configuration error.
func loadSettings() (Settings, error) {
	var s Settings
	if err := envconfig.Process("", &s); err != nil {
		return s, fmt.Errorf("environment: %w", err)
	}
	return s, nil
}

// printEnvUsage writes envconfig's table of variables, defaults and descriptions.
func printEnvUsage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 1, 0, 4, ' ', 0)
	if err := envconfig.Usagef("", &Settings{}, tw, envconfig.DefaultTableFormat); err != nil {
		return err
	}
	return tw.Flush()
}
