package compare

// Server modes in -servers: "NAME@MODE" runs server NAME in one of the
// workload's modes (fanout: wsmill@broadcast, wsmill@rooms), so that one
// run compares one server in several modes side by side with the others.
// The workload names its modes and turns a mode into server flags (Modal);
// without a suffix a server gets the workload's default (mode "").

import (
	"fmt"
	"slices"
	"strings"
)

// Modal is a Workload whose servers run in one of several modes.
type Modal interface {
	// Modes lists the mode names a -servers entry may end with (@MODE).
	Modes() []string
	// ModeFlags returns the server flags of mode ("" when the entry has
	// none) for the server labelled label, or why it cannot run so.
	ModeFlags(label, mode string) ([]string, error)
}

// splitServerMode splits "NAME@MODE" into the name and the mode ("" when
// there is no suffix); modes are the workload's (none: no @ allowed).
func splitServerMode(n string, modes []string) (name, mode string, err error) {
	at := strings.LastIndexByte(n, '@') // the last: a bin: path may hold an @
	if at < 0 {
		return n, "", nil
	}
	name, mode = n[:at], n[at+1:]
	if len(modes) == 0 {
		return "", "", fmt.Errorf("server %q: @%s is a server mode, and this workload has none (fanout has @broadcast and @rooms)", n, mode)
	}
	if !slices.Contains(modes, mode) {
		return "", "", fmt.Errorf("server %q: unknown mode %q (want @%s)", n, mode, strings.Join(modes, " or @"))
	}
	if name == "" {
		return "", "", fmt.Errorf("server %q: no server before @", n)
	}
	return name, mode, nil
}

// setModes fills each spec's ModeArgs from the workload's modes.
func setModes(specs []serverSpec, m Modal) error {
	for i := range specs {
		args, err := m.ModeFlags(specs[i].Label, specs[i].Mode)
		if err != nil {
			return err
		}
		specs[i].ModeArgs = args
	}
	return nil
}
