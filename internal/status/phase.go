package status

// Phase is one step of the supervisor's life, as operators see it on /readyz and in the
// entrypoint_phase metric. The string values are part of the public interface (metric labels,
// JSON), so they never change once released.
type Phase string

// The phases, in the order a normal start goes through them.
const (
	PhaseStarting      Phase = "starting"
	PhaseKeybase       Phase = "keybase"
	PhaseCloning       Phase = "cloning"
	PhaseValidating    Phase = "validating"
	PhaseConfigInvalid Phase = "config-invalid"
	PhaseMigrating     Phase = "migrating"
	PhaseReady         Phase = "ready"
	PhaseRestarting    Phase = "restarting"
	PhaseStopping      Phase = "stopping"
	PhaseStopped       Phase = "stopped"
)

// Phases returns every known phase, in start-up order. It is a function rather than a variable so
// no caller can change the set the entrypoint_phase gauge is built from.
func Phases() []Phase {
	return []Phase{
		PhaseStarting, PhaseKeybase, PhaseCloning, PhaseValidating, PhaseConfigInvalid,
		PhaseMigrating, PhaseReady, PhaseRestarting, PhaseStopping, PhaseStopped,
	}
}

// Known reports whether p is one of Phases, so a typo in a caller shows up as an error instead of
// an unexpected label in the metrics.
func (p Phase) Known() bool {
	for _, q := range Phases() {
		if p == q {
			return true
		}
	}
	return false
}

func (p Phase) String() string { return string(p) }
