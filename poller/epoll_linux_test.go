//go:build linux

package poller

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type recorder struct {
	mu  sync.Mutex
	evs map[int][]Event
	ch  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{evs: map[int][]Event{}, ch: make(chan struct{}, 1024)}
}

func (r *recorder) dispatch(fd int, ev Event) {
	r.mu.Lock()
	r.evs[fd] = append(r.evs[fd], ev)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) events(fd int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs[fd]...)
}

// waitEvent waits until fd has an event with all bits of want, or fails.
func (r *recorder) waitEvent(t *testing.T, fd int, want Event) {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		for _, ev := range r.events(fd) {
			if ev&want == want {
				return
			}
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no event with %b for fd %d; got %v", want, fd, r.events(fd))
		}
	}
}

func socketPair(t *testing.T) (int, int) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestEpollEdgeTriggered(t *testing.T) {
	r := newRecorder()
	p, err := New(r.dispatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, b := socketPair(t)
	if err := p.Add(a); err != nil {
		t.Fatal(err)
	}
	// An empty send buffer is writable: the first event says so.
	r.waitEvent(t, a, EventWrite)

	syscall.Write(b, []byte("hello"))
	r.waitEvent(t, a, EventRead)

	// Edge-triggered: the unread bytes do not produce more events.
	n := len(r.events(a))
	time.Sleep(50 * time.Millisecond)
	if got := len(r.events(a)); got != n {
		t.Fatalf("got %d events after the edge; want %d (no re-report without new data)", got, n)
	}
	// New data is a new edge, even though older bytes are still unread.
	syscall.Write(b, []byte("!"))
	waitCount(t, r, a, n+1)

	// Peer shutdown is readable (read returns 0) and hang-up when closed.
	syscall.Shutdown(b, syscall.SHUT_WR)
	waitCount(t, r, a, n+2)
	if ev := r.events(a)[n+1]; ev&EventRead == 0 {
		t.Fatalf("after peer shutdown got %b; want EventRead", ev)
	}
}

func waitCount(t *testing.T, r *recorder, fd, n int) {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for len(r.events(fd)) < n {
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("got %d events for fd %d; want %d", len(r.events(fd)), fd, n)
		}
	}
}

func TestEpollDelStopsEvents(t *testing.T) {
	r := newRecorder()
	p, err := New(r.dispatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, b := socketPair(t)
	if err := p.Add(a); err != nil {
		t.Fatal(err)
	}
	r.waitEvent(t, a, EventWrite)
	if err := p.Del(a); err != nil {
		t.Fatal(err)
	}
	n := len(r.events(a))
	syscall.Write(b, []byte("x"))
	time.Sleep(50 * time.Millisecond)
	if got := len(r.events(a)); got != n {
		t.Fatalf("got %d events after Del; want %d", got, n)
	}
	// The same number can be registered again (as after close and reuse).
	if err := p.Add(a); err != nil {
		t.Fatalf("re-Add: %v", err)
	}
	if err := p.Add(a); err == nil {
		t.Fatal("second Add of a registered fd succeeded; want error")
	}
}

func TestEpollClose(t *testing.T) {
	r := newRecorder()
	p, err := New(r.dispatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := socketPair(t)
	if err := p.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	r.waitEvent(t, a, EventClosed)
	if err := p.Add(a); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v; want ErrClosed", err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v; want ErrClosed", err)
	}
}

// TestEpollAddNoAlloc: after a descriptor number has been seen once, adding
// it again (as the server does for every new connection on a reused number)
// allocates nothing.
func TestEpollAddNoAlloc(t *testing.T) {
	p, err := New(func(int, Event) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, _ := socketPair(t)
	p.Add(a)
	p.Del(a)
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Add(a); err != nil {
			t.Fatal(err)
		}
		if err := p.Del(a); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("got %v allocs per Add+Del; want 0", allocs)
	}
}

// TestEpollFailedAddLeavesNoTrace: an Add the kernel refuses leaves the
// poller as it was, so the same number can be added once it holds a
// pollable descriptor. easygo records the callback before epoll_ctl and
// kept it on failure: before the fix every later Add of the number answered
// "already registered".
func TestEpollFailedAddLeavesNoTrace(t *testing.T) {
	r := newRecorder()
	p, err := New(r.dispatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := p.Add(fd); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("Add of a regular file: got %v; want EPERM", err)
	}
	// Put a socket on the same number, as the kernel does for the next
	// accepted connection.
	a, b := socketPair(t)
	if err := syscall.Dup3(a, fd, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(fd); err != nil {
		t.Fatalf("Add of a socket on the refused number: got %v; want nil", err)
	}
	syscall.Write(b, []byte("x"))
	r.waitEvent(t, fd, EventRead)
	if err := p.Del(fd); err != nil {
		t.Fatalf("Del: %v", err)
	}
}

// TestEpollWake: every Wake is followed by a dispatch of EventWake that
// starts after it (wakes may coalesce, never get lost), from any goroutine,
// the poll goroutine included. A wake read in the wrong order once left
// the pending flag set with no event coming: every later Wake was lost.
func TestEpollWake(t *testing.T) {
	var posted, seen atomic.Int64
	var p Poller
	var fromInside atomic.Int32
	p, err := New(func(fd int, ev Event) {
		if ev != EventWake || fd != -1 {
			return
		}
		seen.Store(posted.Load())
		if fromInside.CompareAndSwap(1, 2) {
			posted.Add(1)
			p.Wake() // a wake from the poll goroutine itself
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20000 {
				posted.Add(1)
				if err := p.Wake(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	fromInside.Store(1)
	posted.Add(1)
	p.Wake()
	deadline := time.Now().Add(2 * time.Second)
	for seen.Load() != posted.Load() || fromInside.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d wakes the last dispatch saw %d; want every wake followed by a dispatch", posted.Load(), seen.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
