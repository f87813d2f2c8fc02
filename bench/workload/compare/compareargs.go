package compare

// Per-server flags in compare's -servers: "NAME+FLAG+FLAG=VALUE" runs
// server NAME with -FLAG -FLAG=VALUE added to its command line, labelled
// by the whole entry. So one run can hold the same server twice, with and
// without an option (wsmill+deflate,wsmill), and a peer with its own
// (gws+deflate): every -servers entry is a separate column, built once
// per binary.

import (
	"fmt"
	"strings"
)

// splitServerArgs splits a -servers entry into the server's name and the
// flags the "+" parts add.
func splitServerArgs(entry string) (name string, args []string, err error) {
	parts := strings.Split(entry, "+")
	for _, p := range parts[1:] {
		if p == "" || strings.HasPrefix(p, "-") || strings.HasPrefix(p, "=") {
			return "", nil, fmt.Errorf("server %q: each +FLAG names a flag, without its dash (wsmill+deflate, gws+deflate, wsmill+deflate-min=512)", entry)
		}
		args = append(args, "-"+p)
	}
	return parts[0], args, nil
}
