// Package server is wsmill's WebSocket engine: accept, zero-copy upgrade,
// the frame loop, the worker pool, the timing wheel and the outbound queues,
// with an application (App) on top that it calls and that never reaches
// inside it.
//
// # Data flow
//
//	listeners ──accept4──▶ table[fd] ──poller.Add──▶ the epoll of worker fd % Config.Workers
//	(one Serve each)
//
//	┌──── worker k: one goroutine, its own epoll instance (package poller) ─────┐
//	│ epoll_wait → for each event of its own descriptors, run the conn inline: │
//	│   read until EAGAIN: handshake → Upgrader → App.OnOpen, or frames →      │
//	│   App.OnMessage (borrowed payload) / pong / close → App.OnClose;         │
//	│   flush the outbound queue on EventWrite                                 │
//	│ EventWake → its run queue (conns scheduled from elsewhere, requeued for  │
//	│   fairness) and the wheel ticks announced to it (its slots' pushes)      │
//	└─────────────────────────────────────┬─────────────────────────────────────┘
//	  Conn.Send, Broadcast (any goroutine) ┤ c.mu: one writer at a time
//	  wheel goroutine: asleep until a tick │ write(2)/writev(2), never blocking;
//	  has work; its frames, wakes workers ─┘ the rest waits in c's bounded queue
//
// A connection belongs to one worker for its whole life (the descriptor
// number decides), so an event never crosses goroutines: the goroutine
// that returns from epoll_wait reads, parses and answers at once. Work
// found elsewhere (a deadline, an application Close, an overflow,
// Shutdown) goes to the owner's run queue with a Wake (an eventfd in the
// same epoll set). Fairness: a turn reads at most readBudget bytes before
// the conn goes to the back of its worker's queue; a hot connection can
// delay only the connections of its own worker, never another core's.
//
// # Goroutines
//
// A fixed set, whatever the number of connections: one accept loop per
// listener (inside its Serve), Config.Workers event loops (each a poller's wait goroutine), the
// wheel, the net/http server for plain HTTP requests (which, being
// net/http, uses a goroutine per HTTP request, at most Config.MaxHTTPConns
// at once; WebSocket connections never reach it), and, from the first
// Conn.Go on, Config.OffloadWorkers offload goroutines (offload.go), and,
// from the first Broadcast or Publish past broadcastSerial connections,
// Workers-1 fan-out goroutines (fanout.go); never one per connection.
//
// The offload goroutines are the only ones that may block: they run the
// application's jobs (a database query), one connection's in the order Go
// accepted them and one at a time, different connections' concurrently.
// A connection's backlog (an offq in its connExt) holds at most
// Config.OffloadBacklog jobs, each with its own copy of the data it was
// given (a pooled buffer charged to Config.MaxBuffered); Go refuses past
// either bound (Skipped) and never waits. Parked on a condition variable
// while there is nothing to run, they cost no CPU. Jobs outlive their
// connection: an accepted job runs once even if the client has gone
// (its sends report Closed), Shutdown waits for them within its context
// and drops, counted, what is still queued when the context ends.
//
// # Processors
//
// A worker waits in epoll_wait(2), a blocking system call (easygo's wait
// loop), and its thread keeps the goroutine's P (a Go processor) while it
// waits. When no other P is idle, the runtime's monitor takes such a P
// back after one of its ticks (20 µs to 10 ms) and hands it on, and the
// worker, woken by the next event, has to find a P again: futex calls and
// context switches in every quiet moment of a busy server. With GOMAXPROCS
// at least Workers + 1 an idle P always exists and a waiting worker keeps
// its own. SetProcs sets GOMAXPROCS to the runtime's default (cores, or
// the cgroup's CPU quota) plus Workers unless the environment sets it; the
// wsmill command calls it, and so should a program embedding the package.
// The default Workers (DefaultWorkers) is that runtime default, before or
// after SetProcs: counting its spare Ps as cores would double the workers
// (on 2 cores, 4 workers took echo p99 from 0.8 ms to 15-17 ms).
// The monitor also takes the P at once from a goroutine that has not been
// through the scheduler for 10 ms, and to the runtime a worker looks like
// one goroutine running for ever; so a busy worker calls runtime.Gosched
// at most once a millisecond, between connections or after a wheel tick
// (worker.yield), which keeps its P and the monitor quiet. Measured on
// 2 cores, 2 workers, echo of 100 × 1 KiB (perf stat, same load): context
// switches per message 0.25 → 0.13, futex calls 0.035 → 0.007, server CPU
// per message about 10 % less; the yield then took another 6 % (paired
// compare, 6 of 6 rounds), and about 30 % of an idle server's CPU while
// the wheel still ticked 100 times a second.
//
// # When nothing happens
//
// Nothing runs. A worker without events stays in epoll_wait(2), which has
// no timeout; yield runs only after work. The wheel sleeps until the next
// tick that has a connection in a slot of some worker, or the earliest
// handshake or close deadline, and an empty server's wheel until it is
// woken: opening a connection into a slot that comes round sooner, or the
// first deadline on an empty list, kicks it to plan again (an atomic load
// or two, and a non-blocking channel send only when the plan changes; see
// the invariants on wheel). It wakes only the workers that have connections
// in the ticks it announces. The liveness clock does not depend on it: a
// read stamps conn.seen with the time its turn began (the reading serve
// takes anyway) and a worker reads the clock once for the idle checks of
// the slots it pushes, so silence is measured right however long the
// wheel slept. About 10 ms after the workers went back to epoll_wait the
// monitor takes their Ps, as it does from any system call that long,
// finds every P idle and sleeps as well, until the next timer or a
// thread's next system call.
//
// A wake-up after a quiet spell therefore costs about a millisecond of
// CPU, most of it the monitor's: woken by the first system call, it polls
// every 20 µs, then less and less often, until it has taken the waiting
// workers' Ps back (about 65 context switches of its thread per wake-up,
// measured). The wheel's wake-ups follow the work: on 2 cores, 2 workers,
// a process with no connections used 1.73–1.87 % of a core when the wheel
// ticked 100 times a second and uses 0 now (no CPU tick, no context
// switch in 30 s); 2,000 idle connections at PushInterval 1h, IdleTimeout
// off, 1.90–2.17 % before and at most 0.03 % now, one CPU tick in 30 s
// (README, "Idle cost").
//
// # Several listeners
//
// One Server serves any number of listeners, one Serve call (and
// goroutine) each, all feeding the same workers, wheel, table, limits and
// counters: a connection is the engine's whatever port it came in by. A
// listening socket sits in one worker's epoll set (the listeners are dealt
// round the workers) with a callback of its own (poller.AddFunc) that only
// wakes its Serve goroutine, so connection events pay nothing for the
// listeners: there is no "is this a listener?" check on the event path.
// The accept loops register their connections concurrently (table chunks
// by CAS, the poller and the deadline list under their locks); they share
// the one spare descriptor given up at the open-file limit (acceptor).
// Shutdown stops every accept loop, closes every listener passed to Serve
// and returns every Serve with ErrServerClosed.
//
// # What a Server costs before any client
//
// Nothing here is sized by the open-file limit or by Config.MaxConns
// (which defaults to that limit): every structure indexed by descriptor or
// by connection grows with the connections actually held, and its owner is
// the only one that grows it.
//
//   - table (table.go): a directory of 8 chunk pointers to start with,
//     doubled when a larger number comes; an 8 KiB chunk of 1,024 entries
//     is made by the accept loop that first accepts a number in its range.
//     Both only under the table's lock, so the accept loops of several
//     listeners may race; get stays lock-free. The entries, the conn
//     structs, are made once per number. It used to be a directory sized
//     by the open-file limit (up to 512 KiB at 2^30) with 128 KiB chunks:
//     128 KiB for a Server's first client.
//   - wheel (wheel.go): each worker's slots, n = PushInterval/10 ms of
//     them (64 B each, 32 KiB at the default 5 s), empty; a slot's room
//     for connections is carved from its worker's 8 KiB blocks by the
//     worker itself (wheel.add) when the slot takes its first connection,
//     and grows by append past that. It used to be sized from MaxConns:
//     171 KiB per Server at a limit of 20,000, up to 512 KiB.
//   - poller (package poller): each worker's epoll instance keeps one
//     callback per descriptor number it has seen, in 2 KiB chunks made by
//     Add (under the poller's lock); a new poller holds none. It used to
//     be one array per poller sized by the largest number seen in the
//     process, so a worker paid for the numbers of the other workers and
//     of other Servers.
//   - fixed: each worker's read buffer (64 KiB, touched only by reads) and
//     its epoll wait arrays (easygo: 1,024 events, 20 KiB), the net/http
//     server and the bridge's queue. TestFixedCost measures the total
//     (README, "Memory").
//
// # Who owns what
//
//   - A worker's goroutine owns its epoll event array, its read buffer and
//     its connections' read state. Events of its descriptors run inline;
//     events recorded from elsewhere go through its run queue (ready.go),
//     which grows to hold every conn it owns and never blocks.
//   - The acceptor owns a new conn until it is set up (schedSetup, see
//     table.go): events for it only accumulate until then.
//   - A worker owns a conn's read state while the conn is running (see the
//     state machine on conn). Its read buffer (64 KiB) is its own; frames
//     that arrive whole are unmasked in place and lent to App.OnMessage;
//     a Send of that payload writes its header over the client's (which
//     is 4 bytes longer: the mask key) and goes out in one write(2). An
//     incomplete frame's payload, a fragmented message and a slow handshake
//     live in pooled buffers owned by the conn and returned as soon as they
//     are complete. An idle connection owns no buffer at all. The frame
//     and message buffers grow with the bytes received, never with a
//     declared length, and are charged to one server-wide budget
//     (Config.MaxBuffered, held.go).
//   - The outbound queue belongs to the conn and is guarded by conn.mu,
//     which workers (pong, close), application sends and the wheel (pushes,
//     pings) take for each frame, so frames never interleave. Holding conn.mu never blocks
//     on the network: writes are non-blocking.
//   - The wheel asks each Config.Pushes entry for its frame once per
//     wake-up that has ticks to announce, and the workers send it to those
//     ticks' connections; it expires the handshake and close deadlines
//     (deadline.go) and the idle timeout (a ping, then 1001), all without
//     a timer per connection, and with one timer of its own set only for
//     the next of them.
//   - Counters (stats.go) are fixed atomics: no labels or maps on the hot
//     path, so metrics cost no allocation. Inbound counters are per worker;
//     outbound ones (sends from any goroutine) are striped by descriptor.
//   - The table owns the conn structs: one per descriptor number, reused
//     with a new generation when the kernel reuses the number.
//   - A plain HTTP request's descriptor belongs to net/http from the
//     hand-off (bridge.go) until net/http closes it: the bridge closes what
//     net/http never accepted, and Shutdown what is still open when its
//     context ends. Reads are held to the handshake deadline (the whole
//     request within HandshakeTimeout of the accept), the response to
//     HTTPTimeout; at most MaxHTTPConns at once, counted in
//     Stats.HTTPConns until closed. Past the cap the worker answers 503
//     itself and closes the connection as after any refused handshake.
//
// # The application
//
// Config.App's methods run on the worker running the connection: for one
// connection they never overlap and come in order (OnOpen, OnMessage...,
// OnClose exactly once); for different connections they run concurrently
// on the workers. They must not block: a worker serves many connections.
// OnMessage's payload is borrowed until it returns (no copy for a frame
// that arrived whole). A panic is recovered, counted, reported through
// Config.OnError (a *PanicError: callback, connection, value, stack), and
// closes that connection with 1011. OnClose for
// connections still open when Shutdown's context ends runs on the
// goroutine calling Shutdown. An App that implements Drainer gets OnDrain,
// on the worker, when a queue that went over half of Config.MaxOutbound
// has emptied (drain.go): a producer pauses on Conn.Pending and resumes
// there without polling. OnUpgrade sees the offered subprotocols in the
// request's bytes and selects one of them with a string of its own, kept
// without a copy in the connExt (Conn.Subprotocol); a value not offered
// is refused with ErrProtocolNotOffered, since the client would have to
// fail the connection.
//
// A Conn handle names a connection, not a descriptor: (conn struct,
// generation), checked under the conn's lock, so a handle kept after its
// connection closed, even once the kernel reused the number, reports
// Closed and never reaches the next client. Two states are checked: sends
// need the connection live (conn.closed unset, and no Close sent), the
// value and the peer's address only the generation, so OnClose reads
// them whatever ended the connection; detach clears them once OnClose has
// returned. The address is the one accept4 returned, kept in the conn: a
// reset socket has none left to ask for. Sends take any goroutine and
// never block; each says what happened (Written, Queued, Skipped, Closed)
// under its Policy: Reliable frames queue to Config.MaxOutbound and then
// close the client with 1008; LatestOnly frames are skipped while the
// previous one is still queued. A Frame is prepared once and shared by
// every connection it goes to (Broadcast, Config.Pushes): nothing is
// copied unless the kernel takes only part of it.
//
// # Topics
//
// The topic table (topic.go) belongs to the Server: 64 shards, each a
// mutex and a map from name to topic, held only to find, make or drop a
// topic (never with any other lock). A topic keeps one part per worker,
// like the wheel's slots: the subscribers whose descriptor belongs to
// worker i, in a slice under that part's own lock. A connection's list of
// its topics (conn.ext.topics) is guarded by conn.mu. Subscribe and
// Unsubscribe take the part's lock, then conn.mu, the order Publish takes
// them in (part, then each subscriber's conn.mu for its one non-blocking
// write), and change both sides together, so a connection is in a part at
// most once and a frame reaches it at most once. Publish from any
// goroutine writes the parts in turn, or, past broadcastSerial
// subscribers, offers them to the fan-out goroutines (fanout.go) as well,
// claims parts itself until none is left and waits for the others: it returns when every write is done, which keeps frames from
// one goroutine in order. A connection leaves its topics when it stops
// being open (enterClosing, goodbye) and again in detach, once
// conn.closed is set and nothing can add it back; a topic whose last
// subscriber leaves is dropped from its shard, and a shard's map is
// rebuilt smaller when it has emptied, so empty topics cost nothing.
// WatchTopics' function runs after the change, on the changing goroutine
// (a worker for a close), with no lock held.
//
// Nothing here blocks on a client: a Subscribe or Unsubscribe waits at
// most for a publish to the same part to finish its non-blocking writes.
//
// # Compression
//
// permessage-deflate ([RFC7692], Config.Deflate, deflate.go) is negotiated
// only without context takeover in either direction: the answer always
// carries server_no_context_takeover and client_no_context_takeover (a
// server may require the latter, [RFC7692 7.1.1.2]), so every message is
// compressed and decompressed on its own and no connection owns a window,
// a compressor or a decompressor between messages. What a connection
// holds is one flag (conn.deflate, set by the upgrade before the conn is
// reachable, read under mu); "the open fragmented message is compressed"
// is a value of conn.utf8, since such a message is UTF-8 checked only
// once inflated. An idle connection costs what it did without deflate.
//
//   - Inbound: each worker owns one decompressor (worker.zr, klauspost's
//     flate reader, made at its first compressed message and reset for
//     each one) and the reader it pulls from (worker.zsrc: the payload,
//     then 00 00 ff ff and an empty final block, so that a whole message
//     ends in io.EOF and a truncated one does not). The compressed bytes of
//     a fragmented or incomplete message are held like any other
//     (held.go); the message is inflated when its last frame arrives, into
//     a held buffer charged to MaxBuffered that grows with the output and
//     never past MaxMessage bytes of room: one byte more is a 1009 at once.
//     The inflated buffer goes back to its pool once OnMessage returns.
//   - Outbound: klauspost's stateless encoder, whose scratch comes from its
//     own pools for the call, writing into a deflater's buffer from a
//     sync.Pool (sends come from any goroutine; the pool's per-P caches
//     make it per worker in practice). No per-connection or per-worker
//     compressor with its 800 KB of tables exists. A send compresses under
//     the conn's lock, so frames still never interleave; payloads under
//     Config.DeflateMin, and any that would not shrink, go plain (RSV1 is
//     per message).
//   - A prepared Frame (Broadcast, Publish, Config.Pushes) is compressed
//     once, by the first send that needs it for a deflate connection, and
//     that form (Frame.z, an atomic pointer) is shared by every deflate
//     connection; the others get the plain bytes. A broadcast to many
//     deflate connections costs one compression and smaller writes.
//
// # What may block
//
// Nothing on the connection path: not the poll loop, not a worker (a slow
// or silent client costs a pooled buffer, never a waiting goroutine), not
// the wheel, not a send from the application, not Conn.Go (which queues
// or refuses). Only the application's own jobs on the offload pool block,
// and a blocked job holds one of Config.OffloadWorkers goroutines, never a
// worker: a handler that blocked 500 ms in OnMessage stalled every other
// client of its worker; through Conn.Go none of them waits (README). A client that does not read
// fills its outbound queue: LatestOnly frames to it are skipped, and a
// Reliable one that would pass Config.MaxOutbound closes it (1008).
// Shutdown waits, bounded by its context.
//
// # Closing
//
// The server answers a Close (or fails the connection with a close code),
// and from then on sends nothing more (conn.closeSent stops even a racing
// push or application send). Once both Close frames are exchanged it closes the TCP
// connection at once (RFC 6455 7.1.1). When it sent the first Close, it
// half-closes its side once the frame is out and closes the descriptor at
// the peer's Close or FIN, or after Config.CloseTimeout; after a protocol
// failure the input is no longer frame-aligned and only the FIN or the
// timeout count.
// Only the worker running a conn closes its descriptor, after taking it out
// of the wheel, the deadline lists and the poller.
//
// What the kernel holds is bounded like the rest: every accepted socket's
// send and receive buffers are capped (Config.SendBuffer, RecvBuffer), and
// a descriptor closed while bytes for the peer are still unsent (in the
// queue, or in the kernel's: SIOCOUTQ) is closed with a RST, so that no
// orphaned socket keeps them for as long as a peer that never reads keeps
// answering zero-window probes. After a Close exchange the server waits
// for the kernel to deliver before it closes (a FIN); see closeConn.
package server
