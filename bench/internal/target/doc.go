// Package target is the server under test as a process: finding the
// repository (FindRoot), building the root wsmill or a bench/peers server
// (Build), starting it on a free loopback port and waiting until it accepts
// (Start), stopping it with SIGTERM then SIGKILL (Proc.Stop), and the end of
// its log for error messages (Tail).
//
// compare starts one Proc per server per round; scale starts its own fleet
// of wsmill processes (they share a port with SO_REUSEPORT and print a
// start line it waits for) but finds the repository, picks the port and
// quotes logs through here. Every server runs in its own process group
// with Pdeathsig, so a killed wsload leaves no server behind.
package target
