// Package roomfan measures one room of wsmill's chat across instances:
// the fan-out of a message to 2 instances × 9,000 subscribers over NATS
// against 1 instance × 18,000 with no bus, in the same run.
//
// Each round runs every layout once, in the order given (-layouts 1,2:
// one instance, then two). A layout with K > 1 instances starts a NATS
// server (cmd/natsd, nats-server embedded) and K wsmill processes with
// -nats; K = 1 starts one wsmill without it, so the difference is what
// the bus adds. Every process is built from the repository root, listens
// on loopback and is stopped at the end of its layout.
//
// The subscribers are N connections split evenly over the instances, each
// instance's share driven by its own `wsload fanout -chat ROOM` process
// (which spreads them over client processes under the 20,000-descriptor
// limit and takes the kernel's receive stamp of every delivery). All of
// them open one measured window at the same absolute time (-at), so their
// per-message records merge: a message's time to the last subscriber is
// the latest arrival over every instance. A publisher, a connection of
// this process on the first instance, sends "F" + unix ns into the room
// every -interval; the chat delivers it as its JSON message, to every
// member including the publisher (whose copy is ignored).
//
// CPU per message is utime+stime over the window of each wsmill (from
// its fanout process, -pid) and of nats-server (sampled here over the
// same window), divided by the messages sent in it.
//
// Output: a table and "RESULT {json}" on stdout, and with -out DIR the
// files roomfan.json (every round, every instance) and roomfan.md.
package roomfan
