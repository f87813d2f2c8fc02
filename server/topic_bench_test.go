//go:build linux

package server

import (
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// fanoutRig is n open connections, all subscribed to topic "bench",
// sharing min(n, 4,000) AF_UNIX socket pairs as in BenchmarkRevolution
// (n / sockets connections to a socket, all on the socket's worker); every
// send is a real write(2). The workers' loops are stopped: the benchmark
// drives Publish and Broadcast from its own goroutine, which hands the
// other workers' shares to goroutines as in production.
type fanoutRig struct {
	s       *Server
	conns   []*conn
	fds     []int
	peers   []int
	perSock int // connections per socket
	buf     []byte
}

func newFanoutRig(b *testing.B, n int) *fanoutRig {
	workers := runtime.GOMAXPROCS(0)
	s, err := New(testConfig(Config{PushInterval: time.Second, Workers: workers}))
	if err != nil {
		b.Fatal(err)
	}
	s.closeWorkers()
	sockets := min(n, 4000)
	r := &fanoutRig{s: s, perSock: (n + sockets - 1) / sockets, buf: make([]byte, 64<<10)}
	fds := make([]int, sockets)
	for i := range sockets {
		p, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds[i] = p[0]
		r.fds = append(r.fds, p[0])
		r.peers = append(r.peers, p[1])
	}
	for i := range n {
		c := &conn{fd: fds[i%sockets], slot: -1, phase: phaseOpen}
		w := s.owner(c.fd)
		sl := &w.slots[(i/workers)%len(w.slots)]
		sl.put(c)
		if !s.Subscribe(s.handle(c), "bench") {
			b.Fatal("Subscribe failed")
		}
		r.conns = append(r.conns, c)
	}
	s.open.Store(int64(n))
	return r
}

// close closes the sockets (the rigs of one benchmark would pass the
// descriptor limit together).
func (r *fanoutRig) close() {
	for i := range r.fds {
		syscall.Close(r.fds[i])
		syscall.Close(r.peers[i])
	}
}

// drain empties the peers' receive queues.
func (r *fanoutRig) drain() {
	for _, p := range r.peers {
		for {
			if n, err := syscall.Read(p, r.buf); n <= 0 || err != nil {
				break
			}
		}
	}
}

// run times fan, draining the peers outside the timing before a socket
// holds 50 frames (an AF_UNIX socket takes about 200 small writes).
func (r *fanoutRig) run(b *testing.B, fan func() FanoutResult) {
	b.ReportAllocs()
	every := max(1, 50/r.perSock)
	i := 0
	for b.Loop() {
		if res := fan(); res.Written != len(r.conns) {
			b.Fatalf("got %+v; want %d written", res, len(r.conns))
		}
		if i++; i%every == 0 {
			b.StopTimer()
			r.drain()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.conns)), "ns/sub")
	r.drain()
	for _, c := range r.conns {
		if c.pending() != 0 {
			b.Fatalf("a frame was queued (%d bytes): drain more often", c.pending())
		}
	}
}

// BenchmarkPublish publishes one prepared frame to a topic of n
// subscribers, and broadcasts it to the same n connections as the
// baseline (same server, same sockets): run with -cpu 1,2 and compare
// publish/n with broadcast/n. Both hand each worker's share to a
// goroutine of its own past broadcastSerial.
func BenchmarkPublish(b *testing.B) {
	f := NewFrame(OpText, []byte(time.Now().Format(TimeLayout)))
	for _, n := range []int{1, 100, 10_000, 19_000, 100_000} {
		r := newFanoutRig(b, n)
		b.Run("publish/"+strconv.Itoa(n), func(b *testing.B) {
			r.run(b, func() FanoutResult { return r.s.Publish("bench", f, Reliable) })
		})
		b.Run("broadcast/"+strconv.Itoa(n), func(b *testing.B) {
			r.run(b, func() FanoutResult { return r.s.Broadcast(f, Reliable) })
		})
		r.close()
	}
}

// BenchmarkPublishAmongTopics publishes to a topic of 100 subscribers on
// its own, then with a million other subscriptions over 100,000 topics
// (100,000 connections in 10 topics each) in the table: the time must not
// change, since a publish finds its topic in a hash table and walks only
// its subscribers. It reports the heap per subscription of those million.
func BenchmarkPublishAmongTopics(b *testing.B) {
	f := NewFrame(OpText, []byte(time.Now().Format(TimeLayout)))
	r := newFanoutRig(b, 100)
	defer r.close()
	b.Run("alone", func(b *testing.B) {
		r.run(b, func() FanoutResult { return r.s.Publish("bench", f, Reliable) })
	})
	const conns, topics, per = 100_000, 100_000, 10
	names := make([]string, topics)
	for i := range names {
		names[i] = "room-" + strconv.Itoa(i)
	}
	others := make([]*conn, conns)
	for i := range others {
		others[i] = &conn{fd: r.conns[i%len(r.conns)].fd, slot: -1, phase: phaseOpen}
	}
	before := heapNow()
	for i, c := range others {
		h := r.s.handle(c)
		for j := range per {
			if !r.s.Subscribe(h, names[(i+j*(topics/per))%topics]) {
				b.Fatal("Subscribe failed")
			}
		}
	}
	perSub := float64(heapNow()-before) / (conns * per)
	if got := r.s.topics.subs.Load(); got != conns*per+100 {
		b.Fatalf("%d subscriptions; want %d", got, conns*per+100)
	}
	b.Run("among-1M", func(b *testing.B) {
		r.run(b, func() FanoutResult { return r.s.Publish("bench", f, Reliable) })
		b.ReportMetric(perSub, "B/subscription")
	})
	runtime.KeepAlive(others)
	runtime.KeepAlive(names)
}

func heapNow() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSubscribe is a subscribe and an unsubscribe of one connection
// to a topic that has other subscribers.
func BenchmarkSubscribe(b *testing.B) {
	r := newFanoutRig(b, 100)
	defer r.close()
	h := r.s.handle(&conn{fd: r.conns[0].fd, slot: -1, phase: phaseOpen})
	b.ReportAllocs()
	for b.Loop() {
		if !r.s.Subscribe(h, "bench") || !r.s.Unsubscribe(h, "bench") {
			b.Fatal("failed")
		}
	}
}
