// Package natsbus connects a wsmill Server's topics to NATS, so that a
// Publish on one instance reaches the subscribers of every instance.
//
// Data flow and goroutines:
//
//   - Server.WatchTopics calls Bridge.watch on the goroutine that changed a
//     topic (a worker, or the caller of Subscribe/Unsubscribe): it records the
//     topic in a set under a short lock and wakes run; it never blocks.
//   - run, the bridge's one goroutine, swaps the set out and, for each topic,
//     reads Server.Subscribers: first subscriber → ChanSubscribe to
//     Prefix+topic, none left → Unsubscribe. nats.go writes SUB/UNSUB into its
//     buffer and returns; while disconnected it remembers them and sends every
//     live subscription again on reconnect.
//   - Every subscription delivers into one channel of Config.Backlog messages,
//     filled by nats.go's reader goroutine without blocking (full: nats.go
//     drops, counted as slow_consumer). run drains it: decode the one-byte
//     header, check size and UTF-8, build one Frame (the only copy), and
//     Server.Publish it, which writes to every subscriber without blocking or
//     allocating. A slow WebSocket client is the engine's business
//     (LatestOnly skips, Reliable closes at MaxOutbound): it never holds run.
//   - Bridge.Publish runs on the caller's goroutine: Server.Publish here, then
//     nc.Publish (copied into nats.go's buffer; its flusher goroutine writes).
//     NoEcho keeps NATS from sending it back here, so this instance gets it
//     once. The scratch buffer for the header byte is pooled.
//
// Guarantees: at most once, no history. Publishes while NATS is unreachable
// are delivered here and dropped for the bus (ReconnectBufSize(-1)), counted;
// never sent late, never duplicated. The bridge starts while NATS is down and
// connects when it is up (RetryOnFailedConnect, MaxReconnects(-1)).
package natsbus
