package soak

// soak, the worker side: slots, tallies, and the good client.
//
// A soak worker runs spec.N slots. Each slot belongs to one class (good or
// one bad behaviour) and runs its class in a loop: one connection at a time,
// a short pause, again, until the window ends. So a class's concurrency is
// its slot count, and the connections it opens over the run are many more.
// Every read and write has a deadline no later than the window's end (plus
// bounded grace for the good clients' closing handshake), so the worker
// always finishes shortly after the window.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// soakClass is what a slot does: classGood, or one of the bad behaviours
// numbered 1 to 9 as in the README. The numbers are part of -mix: a new
// behaviour takes the next one.
type soakClass int

const (
	classGood      soakClass = iota
	classHog                 // 1: declares a huge frame, trickles its payload
	classHTTPHold            // 2: plain HTTP with a body that never comes
	classBurstFIN            // 3: a burst of frames, then SHUT_WR
	classSlowloris           // 4: the upgrade request one byte at a time
	classNoRead              // 5: sends, never reads
	classReset               // 6: RST mid-handshake or mid-frame
	classInvalid             // 7: protocol errors
	classIdle                // 8: upgraded, then silent
	classStall               // 9: tiny window, a burst of echo requests, then neither reads nor sends
	nClasses
)

// classInfo names each class, says what it does and what a sound server does
// about it (the report prints both).
var classInfo = [nClasses]struct{ name, what, expect string }{
	classGood:      {"good", "upgrade, greeting, echoes checked byte for byte, time pushes", "every client served"},
	classHog:       {"hog", "declares a -max-message binary frame, then 1 byte every -trickle", "memory stays bounded (see RSS)"},
	classHTTPHold:  {"http-hold", "GET / with Content-Length: 100 and no body, held open", "answers or closes; never holds the fd forever"},
	classBurstFIN:  {"burst-fin", "-burst of 64 KiB masked frames, SHUT_WR, reads the echoes", "closes within -fin-wait of the FIN"},
	classSlowloris: {"slowloris", "upgrade request 1 byte every -trickle", "drops it at the handshake timeout"},
	classNoRead:    {"no-read", "SO_RCVBUF 4 KiB, 16 KiB frames every 10 ms, never reads", "closes it at the outbound limit"},
	classReset:     {"reset", "RST (SO_LINGER 0) right after connect, mid-handshake or mid-frame", "frees it (fds back to baseline)"},
	classInvalid:   {"invalid", "unmasked frame / reserved opcode 3 / text not UTF-8", "Close 1002 / 1002 / 1007"},
	classIdle:      {"idle", "upgraded, then silent (reads, never answers a ping)", "pings, then Close 1001 at the idle timeout"},
	classStall: {"stall", "SO_RCVBUF 2 KiB, -stall-burst of 60,000-byte echo requests, then neither reads nor sends",
		"ends it (RST or FIN seen by the client) within -close-timeout + -stall-slack of the burst's start"},
}

// soakSpec is the soak part of a workerSpec.
type soakSpec struct {
	Counts      [nClasses]int `json:"counts"` // slots per class over all workers
	Interval    time.Duration `json:"interval"`
	PushSlack   time.Duration `json:"push_slack"`
	GoodLife    time.Duration `json:"good_life"`
	GoodEvery   time.Duration `json:"good_every"`
	EchoTimeout time.Duration `json:"echo_timeout"`
	Hold        time.Duration `json:"hold"`
	Trickle     time.Duration `json:"trickle"`
	FinWait     time.Duration `json:"fin_wait"`
	MaxMessage  int           `json:"max_message"`
	Burst       int           `json:"burst"`

	CloseTimeout time.Duration `json:"close_timeout"` // the server's -close-timeout
	StallSlack   time.Duration `json:"stall_slack"`
	StallBurst   int           `json:"stall_burst"`
}

// pushLimit is the longest acceptable gap between two time pushes (and from
// the greeting to the first).
func (ss *soakSpec) pushLimit() time.Duration { return 2*ss.Interval + ss.PushSlack }

// stallLimit is how long after a stall connection's burst began the server
// may take to end it: it passes -max-outbound within the first frames'
// echoes, sends Close 1008 (which cannot reach a closed window) and gives
// up at its close timeout.
func (ss *soakSpec) stallLimit() time.Duration { return ss.CloseTimeout + ss.StallSlack }

// soakPlan deals the slots out round-robin (one of each class in turn while
// a class has slots left), so that any contiguous range of global indexes,
// which is what one worker gets, holds a fair mix.
func soakPlan(counts [nClasses]int) []soakClass {
	var plan []soakClass
	left := counts
	for more := true; more; {
		more = false
		for cl := range nClasses {
			if left[cl] > 0 {
				plan = append(plan, cl)
				left[cl]--
				more = true
			}
		}
	}
	return plan
}

// outcomeKind says who ended a bad connection.
type outcomeKind int

const (
	kindServer    outcomeKind = iota // the server closed it (Close frame, FIN, RST, HTTP answer and close)
	kindOpenAtEnd                    // still open when the window ended
	kindGaveUp                       // still open after -hold: the client closed it
	kindClient                       // the client ended it as planned (reset)
	kindError                        // could not get to the misbehaviour (dial or upgrade failed)
)

// soakOutcome is how one bad connection ended.
type soakOutcome struct {
	kind  outcomeKind
	how   string        // key in the outcome counts, e.g. "Close 1002 (expected)", "EOF", "held"
	after time.Duration // to the server's close, from the behaviour's reference point (kindServer)
	late  bool          // the server closed it, but later than the behaviour allows (stall)
	skip  bool          // not counted: the window ended before the connection was up
}

// soakClassStats is one class's tally in one worker (and, summed, overall).
type soakClassStats struct {
	Started     int            `json:"started"`
	ByServer    int            `json:"closed_by_server"`
	OpenAtEnd   int            `json:"open_at_end"`
	GaveUp      int            `json:"client_gave_up"`
	ClientEnded int            `json:"client_ended"`
	Errors      int            `json:"errors"`
	Late        int            `json:"ended_late,omitempty"` // closed by the server past the behaviour's limit (stall)
	Outcomes    map[string]int `json:"outcomes,omitempty"`
	Hist        string         `json:"close_hist,omitempty"` // ms to the server's close (HdrHistogram V2)
}

// soakGoodStats is the good clients' tally in one worker.
type soakGoodStats struct {
	Started   int            `json:"started"`
	Served    int            `json:"served"`
	Failed    int            `json:"failed"`
	OpenAtEnd int            `json:"open_at_end"`
	Echoes    int64          `json:"echoes"`
	Pushes    int64          `json:"pushes"`
	Seconds   float64        `json:"seconds"` // connected time, summed
	MaxGapNs  int64          `json:"max_gap_ns"`
	GapHist   string         `json:"gap_hist"` // ms between pushes (HdrHistogram V2)
	Failures  map[string]int `json:"failures,omitempty"`
}

// soakPart is one worker's result.
type soakPart struct {
	Good         soakGoodStats            `json:"good"`
	Classes      [nClasses]soakClassStats `json:"classes"`
	FinNotClosed int                      `json:"fin_not_closed"` // burst-fin: not closed within -fin-wait
	BurstSent    int64                    `json:"burst_sent"`
	BurstEchoed  int64                    `json:"burst_echoed"`
	StallMaxNs   int64                    `json:"stall_max_ns"` // worst lateness of a 100 ms ticker in this process
}

// soaker is one worker's running soak.
type soaker struct {
	spec fleet.Spec
	ss   *soakSpec
	win  context.Context // ends with the window (or the run)
	end  time.Time       // the window's end

	open [nClasses]atomic.Int64 // connections open now, per class

	mu     sync.Mutex
	part   soakPart
	hists  [nClasses]*hdr.Histogram
	gapH   *hdr.Histogram
	finBug atomic.Int64
	bSent  atomic.Int64
	bEcho  atomic.Int64
}

// Worker runs one client process's share of the good and hostile slots.
func Worker(ctx context.Context, spec fleet.Spec, cmds <-chan fleet.Command, emit func(fleet.Event)) error {
	ss := new(soakSpec)
	if err := json.Unmarshal(spec.Params, ss); err != nil {
		return fmt.Errorf("soak worker: bad soak spec: %w", err)
	}
	plan := soakPlan(ss.Counts)
	if spec.Offset+spec.N > len(plan) {
		return fmt.Errorf("soak worker slots %d..%d beyond the plan's %d", spec.Offset, spec.Offset+spec.N, len(plan))
	}
	plan = plan[spec.Offset : spec.Offset+spec.N]
	now := time.Now().UnixNano()
	emit(fleet.Event{Type: "ready", OK: spec.N, DialStart: now, DialEnd: now})
	cmd, ok := fleet.WaitCmd(ctx, cmds, "start")
	if !ok {
		emit(fleet.Event{Type: "done"})
		return nil
	}
	end := time.Now().Add(cmd.Duration)
	win, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	s := &soaker{spec: spec, ss: ss, win: win, end: end, gapH: stats.CloseHist()}
	for cl := range nClasses {
		s.hists[cl] = stats.CloseHist()
	}

	ticks := make(chan struct{})
	tickDone := make(chan struct{})
	var stall int64
	go func() {
		// The parent's timeline shows how many connections are open. And a
		// push gap is only the server's fault if this process was running:
		// a 100 ms ticker that fires late measures how long it was not.
		defer close(tickDone)
		const every = 100 * time.Millisecond
		t := time.NewTicker(every)
		defer t.Stop()
		last := time.Now()
		for n := 1; ; n++ {
			select {
			case <-ticks:
				return
			case now := <-t.C:
				stall = max(stall, int64(now.Sub(last)-every))
				last = now
			}
			if n%10 == 0 {
				emit(fleet.Event{Type: "tick", Open: s.openNow()})
			}
		}
	}()
	var wg sync.WaitGroup
	stagger := min(2*time.Second, cmd.Duration/10)
	for i, cl := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the first connections so they do not all dial at once.
			proc.Sleep(win, time.Duration(mrand.Int64N(int64(stagger)+1)))
			s.loop(spec.Offset+i, cl)
		}()
	}
	wg.Wait()
	close(ticks)
	<-tickDone

	part, err := s.result()
	if err != nil {
		return err
	}
	part.StallMaxNs = stall
	emit(fleet.ResultEvent(part))
	fleet.WaitCmd(ctx, cmds, "close")
	emit(fleet.Event{Type: "done"})
	return nil
}

func (s *soaker) openNow() []int {
	out := make([]int, nClasses)
	for cl := range nClasses {
		out[cl] = int(s.open[cl].Load())
	}
	return out
}

// over reports whether the window has ended.
func (s *soaker) over() bool { return s.win.Err() != nil || !time.Now().Before(s.end) }

// until is now+d, but no later than the window's end.
func (s *soaker) until(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if t.After(s.end) {
		return s.end
	}
	return t
}

// pauses between two connections of a slot: churn, but modest on two cores.
var soakPause = [nClasses]time.Duration{
	classGood:      50 * time.Millisecond,
	classHog:       100 * time.Millisecond,
	classHTTPHold:  100 * time.Millisecond,
	classBurstFIN:  time.Second,
	classSlowloris: 100 * time.Millisecond,
	classNoRead:    500 * time.Millisecond,
	classReset:     100 * time.Millisecond,
	classInvalid:   100 * time.Millisecond,
	classIdle:      100 * time.Millisecond,
	classStall:     time.Second,
}

// loop runs one slot until the window ends. g is the slot's global index.
func (s *soaker) loop(g int, cl soakClass) {
	for n := 0; !s.over(); n++ {
		if cl == classGood {
			s.good(g)
		} else {
			s.record(cl, s.runBad(cl, g, n))
		}
		proc.Sleep(s.win, soakPause[cl])
	}
}

func (s *soaker) runBad(cl soakClass, g, n int) soakOutcome {
	switch cl {
	case classHog:
		return s.hog(g)
	case classHTTPHold:
		return s.httpHold(g)
	case classBurstFIN:
		return s.burstFIN(g)
	case classSlowloris:
		return s.slowloris(g)
	case classNoRead:
		return s.noRead(g)
	case classReset:
		return s.reset(g, n)
	case classInvalid:
		return s.invalid(g, n)
	case classIdle:
		return s.idle(g)
	case classStall:
		return s.stall(g)
	}
	panic("soak: unknown class")
}

func (s *soaker) record(cl soakClass, o soakOutcome) {
	if o.skip {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.part.Classes[cl]
	if st.Outcomes == nil {
		st.Outcomes = map[string]int{}
	}
	st.Started++
	st.Outcomes[o.how]++
	switch o.kind {
	case kindServer:
		st.ByServer++
		s.hists[cl].RecordValue(max(o.after.Milliseconds(), 1))
		if o.late {
			st.Late++
		}
	case kindOpenAtEnd:
		st.OpenAtEnd++
	case kindGaveUp:
		st.GaveUp++
	case kindClient:
		st.ClientEnded++
	case kindError:
		st.Errors++
	}
}

func (s *soaker) result() (*soakPart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.part
	for cl := range nClasses {
		if p.Classes[cl].ByServer == 0 {
			continue
		}
		enc, err := s.hists[cl].Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("encode histogram: %w", err)
		}
		p.Classes[cl].Hist = string(enc)
	}
	enc, err := s.gapH.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	p.Good.GapHist = string(enc)
	p.FinNotClosed = int(s.finBug.Load())
	p.BurstSent, p.BurstEchoed = s.bSent.Load(), s.bEcho.Load()
	return &p, nil
}

// dialOpts are slot g's dial options.
func (s *soaker) dialOpts(g, rcvbuf int) wsclient.Options {
	o := wsclient.Options{Addr: s.spec.Addr, Timeout: s.spec.DialTimeout, RcvBuf: rcvbuf, ReadBuf: 4096}
	if len(s.spec.Src) > 0 {
		o.Src = s.spec.Src[g%len(s.spec.Src)]
	}
	return o
}

// goodSizes are the good clients' message sizes, in turn: around the 7-bit
// and 16-bit length encodings, and a few KiB.
var goodSizes = [...]int{1, 16, 125, 126, 1000, 4096, 8192, 65535, 65536, 300}

// good runs one good client: upgrade, greeting, then one echo at a time
// every -good-every (text and binary in turn, checked byte for byte) while
// checking the push gaps, for a random lifetime around -good-life, then a
// closing handshake. The first failure ends it and is counted once.
func (s *soaker) good(g int) {
	c, err := wsclient.Dial(s.win, s.dialOpts(g, 0))
	if err != nil {
		if !s.over() {
			s.goodDone(0, "upgrade: "+wsclient.ErrClass(err), false, 0, 0, 0)
		}
		return
	}
	defer c.Close()
	s.open[classGood].Add(1)
	defer s.open[classGood].Add(-1)
	if err := c.ExpectGreeting(s.spec.DialTimeout); err != nil {
		s.goodDone(0, "greeting missing: "+wsclient.ErrClass(err), false, 0, 0, 0)
		return
	}
	greeted := time.Now()
	limit := s.ss.pushLimit()
	life := s.ss.GoodLife/2 + time.Duration(mrand.Int64N(int64(s.ss.GoodLife)+1))
	stopAt := greeted.Add(life)
	cutByEnd := false
	if !stopAt.Before(s.end) {
		stopAt, cutByEnd = s.end, true
	}

	type msg struct {
		Op byte
		p  []byte
	}
	var (
		lastPush atomic.Int64 // unix ns of the last push (the greeting at first)
		maxGap   atomic.Int64 // ns
		pushes   atomic.Int64
		rerr     error // how the reader ended; read after <-done
	)
	lastPush.Store(greeted.UnixNano())
	echoes := make(chan msg, 1)
	done := make(chan struct{})
	quit := make(chan struct{})
	c.NC.SetReadDeadline(s.end.Add(limit + 10*time.Second))
	go func() {
		defer close(done)
		first := true
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				rerr = err
				return
			}
			if wsclient.IsPush(op, p) {
				t := time.Now().UnixNano()
				gap := t - lastPush.Swap(t)
				if gap > maxGap.Load() {
					maxGap.Store(gap)
				}
				if !first { // the first push's phase is the server's choice
					s.mu.Lock()
					s.gapH.RecordValue(max(gap/1e6, 1))
					s.mu.Unlock()
				}
				first = false
				pushes.Add(1)
				continue
			}
			select {
			case echoes <- msg{op, bytes.Clone(p)}:
			case <-quit:
				return
			}
		}
	}()
	dropped := func() string { return "dropped by server: " + endHow(rerr) }
	gapFail := func() string {
		if maxGap.Load() > int64(limit) || time.Since(time.Unix(0, lastPush.Load())) > limit {
			return fmt.Sprintf("push gap over %v", limit)
		}
		return ""
	}

	fail := ""
	var echoed int64
	buf := make([]byte, 65536)
	for seq := uint64(0); fail == ""; seq++ {
		wait := s.ss.GoodEvery/2 + time.Duration(mrand.Int64N(int64(s.ss.GoodEvery)+1))
		if time.Now().Add(wait).After(stopAt) {
			wait = time.Until(stopAt)
		}
		select {
		case <-done:
			fail = dropped()
		case <-time.After(wait):
		}
		if fail != "" {
			break
		}
		if fail = gapFail(); fail != "" || !time.Now().Before(stopAt) {
			break
		}
		p := buf[:goodSizes[seq%uint64(len(goodSizes))]]
		wsclient.EchoPayload(p, seq)
		op := byte(wsclient.OpText)
		if seq%2 == 1 {
			op = wsclient.OpBinary
		}
		c.NC.SetWriteDeadline(time.Now().Add(s.ss.EchoTimeout))
		if err := c.WriteFrame(op, p); err != nil {
			fail = "write: " + wsclient.ErrClass(err)
			break
		}
		select {
		case m := <-echoes:
			if m.Op != op || !bytes.Equal(m.p, p) {
				fail = "echo mismatch"
			}
			echoed++
		case <-done:
			fail = dropped()
		case <-time.After(s.ss.EchoTimeout):
			fail = fmt.Sprintf("echo missing after %v", s.ss.EchoTimeout)
		}
	}
	if fail == "" {
		fail = gapFail()
	}
	if fail == "" {
		// Closing handshake: the server must answer our Close (or at least close).
		c.NC.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteFrame(wsclient.OpClose, []byte{0x03, 0xE8}); err != nil {
			fail = "close: " + wsclient.ErrClass(err)
		} else {
			select {
			case <-done:
				if !errors.Is(rerr, wsclient.ErrPeerClosed) && endHow(rerr) != "EOF" {
					fail = "close: " + endHow(rerr)
				}
			case <-time.After(2 * time.Second):
				fail = "Close not answered within 2s"
			}
		}
	}
	close(quit)
	c.Close()
	<-done
	s.goodDone(time.Since(greeted), fail, cutByEnd, echoed, pushes.Load(), maxGap.Load())
}

func (s *soaker) goodDone(alive time.Duration, fail string, cutByEnd bool, echoes, pushes, maxGap int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.part.Good
	st.Started++
	st.Echoes += echoes
	st.Pushes += pushes
	st.Seconds += alive.Seconds()
	st.MaxGapNs = max(st.MaxGapNs, maxGap)
	if fail != "" {
		st.Failed++
		if st.Failures == nil {
			st.Failures = map[string]int{}
		}
		st.Failures[fail]++
		return
	}
	st.Served++
	if cutByEnd {
		st.OpenAtEnd++
	}
}
