package server

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// Topics. A topic is a set of connections that Publish sends one prepared
// frame to. Like the wheel's slots, a topic's members are kept per worker
// (part i holds the subscribers whose descriptor belongs to worker i), so
// a publish to many subscribers runs on every core, each share under its
// own lock, and Subscribe, Unsubscribe and close of one connection touch
// only the share of that connection's worker.
//
// Invariants (see also the package doc, "Topics"):
//
//   - A connection is in a topic's part at most once, and then the topic is
//     in the connection's list (conn.ext.topics) exactly once, with pos its
//     index in the part. Both are changed together, under the part's lock
//     and the conn's lock (in that order, the order Publish takes them);
//     pos is also rewritten, under the same two locks, when a removal
//     moves the connection within the part.
//   - Once conn.closed is set (detach), nothing adds to the list: Subscribe
//     and Unsubscribe fail on a closed conn, and detach alone takes the
//     topics out, one at a time, before it releases the struct.
//   - refs (under the shard's lock) counts the topic's subscriptions plus
//     the Subscribe calls holding it; a topic is in its shard's map exactly
//     while refs > 0, so an empty topic is gone and costs nothing.
//   - The shard lock is never held with a part or conn lock: it only finds,
//     makes and drops topics.
type topic struct {
	name  string
	refs  int          // guarded by the shard's lock
	count atomic.Int64 // subscribers over all parts, changed under a part lock
	parts []topicPart  // one per worker
}

type topicPart struct {
	mu    sync.Mutex
	conns []*conn
	_     [32]byte // keep neighbouring part locks off one cache line
}

// topicRef is one entry of a connection's topic list.
type topicRef struct {
	t   *topic
	pos int32 // c's index in t.parts[owner].conns
}

// topicShards is the number of independently locked pieces of the topic
// table: Subscribe and Publish on different topics seldom meet on a lock.
const topicShards = 64

type topicShard struct {
	mu   sync.Mutex
	m    map[string]*topic
	peak int      // the map's largest length since it was last rebuilt
	_    [40]byte // keep shard locks apart
}

type topicTable struct {
	seed   maphash.Seed
	shards [topicShards]topicShard
	n      atomic.Int64 // topics with at least one reference
	subs   atomic.Int64 // subscriptions, over all topics
}

func (tt *topicTable) init() {
	tt.seed = maphash.MakeSeed()
	for i := range tt.shards {
		tt.shards[i].m = make(map[string]*topic)
	}
}

func (tt *topicTable) shard(name string) *topicShard {
	return &tt.shards[maphash.String(tt.seed, name)%topicShards]
}

// lookup returns the topic named name, or nil.
func (tt *topicTable) lookup(name string) *topic {
	sh := tt.shard(name)
	sh.mu.Lock()
	t := sh.m[name]
	sh.mu.Unlock()
	return t
}

// hold returns the topic named name with one more reference, making it if
// needed (the only allocation of a Subscribe to a topic that exists).
func (tt *topicTable) hold(name string, workers int) *topic {
	sh := tt.shard(name)
	sh.mu.Lock()
	t := sh.m[name]
	if t == nil {
		t = &topic{name: strings.Clone(name), parts: make([]topicPart, workers)}
		sh.m[name] = t
		sh.peak = max(sh.peak, len(sh.m))
		tt.n.Add(1)
	}
	t.refs++
	sh.mu.Unlock()
	return t
}

// release drops a reference; the last one takes the topic out of the table.
func (tt *topicTable) release(t *topic) {
	sh := tt.shard(t.name)
	sh.mu.Lock()
	if t.refs--; t.refs == 0 {
		delete(sh.m, t.name)
		tt.n.Add(-1)
		// A Go map never gives back its buckets: after a burst of topics
		// has left, copy the survivors into a map of their size, so that
		// empty topics cost nothing. Amortised over the deletions.
		switch {
		case len(sh.m) == 0 && sh.peak > 8:
			sh.m, sh.peak = make(map[string]*topic), 0
		case sh.peak >= 64 && len(sh.m) <= sh.peak/4:
			m := make(map[string]*topic, len(sh.m))
			for k, v := range sh.m {
				m[k] = v
			}
			sh.m, sh.peak = m, len(m)
		}
	}
	sh.mu.Unlock()
}

// FanoutResult says what a Publish or Broadcast did: how many connections
// had the frame written whole by the kernel, queued (wholly or in part),
// skipped (LatestOnly, the client is behind) and found closed or closing
// (or closed by this send: a Reliable frame past Config.MaxOutbound).
type FanoutResult struct {
	Written, Queued, Skipped, Closed int
}

// Sent is the number of connections the frame was written or queued to.
func (r FanoutResult) Sent() int { return r.Written + r.Queued }

func (r *FanoutResult) count(x SendResult) {
	switch x {
	case Written:
		r.Written++
	case Queued:
		r.Queued++
	case Skipped:
		r.Skipped++
	default:
		r.Closed++
	}
}

func (r *FanoutResult) add(o FanoutResult) {
	r.Written += o.Written
	r.Queued += o.Queued
	r.Skipped += o.Skipped
	r.Closed += o.Closed
}

// Subscribe adds c to topic, so that every frame published to topic from
// then on goes to c, until Unsubscribe or the end of the connection (a
// connection leaves all its topics when it closes, whatever the cause,
// before its OnClose runs). It reports whether c is subscribed when it
// returns: true also when it already was (subscribing twice still delivers
// each frame once, and one Unsubscribe undoes both); false only when c is
// closed or closing (its Close frame is sent), or is the zero Conn.
//
// Safe from any goroutine, OnOpen and OnMessage included; it never blocks
// on a client (it waits at most for a publish to the topic's share of c's
// worker to finish writing, each write non-blocking). Subscribing to a
// topic that already has subscribers allocates nothing once c has
// subscribed to something before (c's topic list keeps its capacity); a
// new topic costs its name and its table entry. topic is copied when it
// makes a new topic, and not retained otherwise.
func (s *Server) Subscribe(h Conn, topic string) bool {
	if h.c == nil || h.s != s {
		return false
	}
	t := s.topics.hold(topic, len(s.workers))
	w := h.c.fd % len(s.workers)
	part := &t.parts[w]
	part.mu.Lock()
	c := h.c
	c.mu.Lock()
	if c.gen != h.gen || c.closed || c.closeSent {
		c.mu.Unlock()
		part.mu.Unlock()
		s.topics.release(t)
		return false
	}
	x := c.extLocked()
	for i := range x.topics {
		if x.topics[i].t == t {
			c.mu.Unlock()
			part.mu.Unlock()
			s.topics.release(t) // the subscription holds its own
			return true
		}
	}
	x.topics = append(x.topics, topicRef{t: t, pos: int32(len(part.conns))})
	c.mu.Unlock()
	part.conns = append(part.conns, c)
	first := t.count.Add(1) == 1
	part.mu.Unlock()
	s.topics.subs.Add(1)
	if first && s.watch != nil {
		s.watch(t.name)
	}
	return true
}

// Unsubscribe takes c out of topic. It reports whether it did: false when
// c was not subscribed to topic, or is closed (a closed connection has
// left, or is leaving, every topic by itself), or is the zero Conn. Safe
// from any goroutine; allocates nothing; never blocks on a client.
func (s *Server) Unsubscribe(h Conn, topic string) bool {
	if h.c == nil || h.s != s {
		return false
	}
	t := s.topics.lookup(topic)
	if t == nil {
		return false
	}
	// t may be leaving the table as we look: then c is not in it, and the
	// scan below finds nothing.
	part := &t.parts[h.c.fd%len(s.workers)]
	part.mu.Lock()
	c := h.c
	c.mu.Lock()
	if c.gen != h.gen || c.closed || c.ext == nil {
		c.mu.Unlock()
		part.mu.Unlock()
		return false
	}
	pos := c.ext.dropTopic(t)
	c.mu.Unlock()
	if pos < 0 {
		part.mu.Unlock()
		return false
	}
	last := s.leavePart(t, part, c, pos)
	part.mu.Unlock()
	s.topics.release(t)
	if last && s.watch != nil {
		s.watch(t.name)
	}
	return true
}

// dropTopic takes t out of the connection's list and returns c's index in
// t's part, or -1 when t is not in the list. Caller holds the part's lock
// and conn.mu.
func (x *connExt) dropTopic(t *topic) int32 {
	list := x.topics
	for i := range list {
		if list[i].t == t {
			pos := list[i].pos
			n := len(list) - 1
			list[i] = list[n]
			list[n] = topicRef{}
			x.topics = list[:n]
			return pos
		}
	}
	return -1
}

// leavePart removes c, at index pos, from part, moving the part's last
// connection into its place, and reports whether the topic has no
// subscriber left. Caller holds part.mu, not c.mu.
func (s *Server) leavePart(t *topic, part *topicPart, c *conn, pos int32) bool {
	last := int32(len(part.conns)) - 1
	if moved := part.conns[last]; pos != last {
		part.conns[pos] = moved
		moved.mu.Lock()
		for i := range moved.ext.topics {
			if moved.ext.topics[i].t == t {
				moved.ext.topics[i].pos = pos
				break
			}
		}
		moved.mu.Unlock()
	}
	part.conns[last] = nil
	part.conns = part.conns[:last]
	s.topics.subs.Add(-1)
	return t.count.Add(-1) == 0
}

// leaveTopics takes c out of every topic it is in. Called when c stops
// being open, before OnClose: by enterClosing (c's Close is sent, so
// Subscribe refuses it) and by detach once c.closed is set, when nothing
// but the pos updates of leavePart changes c's list any more. Between the
// two an Unsubscribe may race it, and a Subscribe (only when the Close
// frame could not be written) may add a topic that detach then removes.
func (s *Server) leaveTopics(c *conn) {
	w := c.fd % len(s.workers)
	for {
		c.mu.Lock()
		if c.ext == nil || len(c.ext.topics) == 0 {
			c.mu.Unlock()
			return
		}
		t := c.ext.topics[len(c.ext.topics)-1].t
		c.mu.Unlock()
		part := &t.parts[w]
		part.mu.Lock()
		c.mu.Lock()
		pos := c.ext.dropTopic(t)
		c.mu.Unlock()
		if pos < 0 { // an Unsubscribe was first
			part.mu.Unlock()
			continue
		}
		last := s.leavePart(t, part, c, pos)
		part.mu.Unlock()
		s.topics.release(t)
		if last && s.watch != nil {
			s.watch(t.name)
		}
	}
}

// Subscribers is the number of connections subscribed to topic on this
// server now (0 for a topic nobody is subscribed to). Safe from any
// goroutine; allocates nothing.
func (s *Server) Subscribers(topic string) int {
	t := s.topics.lookup(topic)
	if t == nil {
		return 0
	}
	return int(t.count.Load())
}

// WatchTopics sets fn to be told when a topic gains its first subscriber
// or loses its last: after a Subscribe takes topic from no subscribers to
// some, or an Unsubscribe or a connection's close takes it from some to
// none, fn(topic) runs on the goroutine that made the change (the
// caller's, or the worker closing the connection), outside every engine
// lock. Calls may be spurious or coalesced (two racing changes may each
// see the other's state), but no change is missed: after the last change
// to a topic at least one call for it follows, so a watcher that reads
// Subscribers(topic) on each call ends with the right answer. fn must be
// quick and must not block (a bridge to a message bus hands the topic to
// its own goroutine); it may call Subscribers. Call WatchTopics before
// Serve; nil turns it off.
func (s *Server) WatchTopics(fn func(topic string)) { s.watch = fn }

// Publish sends the prepared frame f to every connection subscribed to
// topic, with policy p, and says what happened at each. It is safe from
// any goroutine (an App method included), never blocks on a client and
// sends f itself, without a copy (unless the kernel takes only part of it).
// Up to broadcastSerial subscribers the calling goroutine writes them all;
// past that the workers' shares are split between it and the fan-out
// goroutines, as in Broadcast, so a publish to many subscribers uses every
// core. Either way it allocates nothing. Frames published one after another from one goroutine reach each
// subscriber in that order; a connection subscribed, unsubscribed or
// closed during the call may or may not get f, and gets it at most once.
// A topic nobody is subscribed to costs a table lookup.
func (s *Server) Publish(topic string, f *Frame, p Policy) FanoutResult {
	t := s.topics.lookup(topic)
	if t == nil {
		return FanoutResult{}
	}
	if len(t.parts) == 1 || t.count.Load() <= broadcastSerial {
		var r FanoutResult
		for i := range t.parts {
			s.publishPart(&t.parts[i], f, p, &r)
		}
		return r
	}
	return s.fanout(t, f, p, len(t.parts))
}

// publishPart sends f to one worker's share of a topic.
func (s *Server) publishPart(part *topicPart, f *Frame, p Policy, r *FanoutResult) {
	part.mu.Lock()
	for _, c := range part.conns {
		c.mu.Lock()
		r.count(s.sendLocked(c, s.wire(c, f), nil, p, f.n, false))
		c.mu.Unlock()
	}
	part.mu.Unlock()
}
