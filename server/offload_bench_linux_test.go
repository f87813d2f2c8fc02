package server

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// benchJob stands for a query: it blocks for benchSleep (0: CPU only).
var benchSleep time.Duration

var benchDone sync.WaitGroup

func benchJob(Conn, []byte) {
	if benchSleep > 0 {
		time.Sleep(benchSleep)
	}
	benchDone.Done()
}

// BenchmarkOffload: jobs/s through Conn.Go from 1,000 connections (socket
// pairs, no network) for pool sizes around the default, with jobs that
// block 1 ms (a database round trip on a LAN) and jobs that do nothing
// (the pool's own cost per job).
func BenchmarkOffload(b *testing.B) {
	for _, sleep := range []time.Duration{0, time.Millisecond} {
		for _, workers := range []int{16, 64, 256} {
			b.Run(fmt.Sprintf("sleep=%v/workers=%d", sleep, workers), func(b *testing.B) {
				s, err := New(testConfig(Config{PushInterval: time.Hour, Workers: 1, OffloadWorkers: workers, OffloadBacklog: 64}))
				if err != nil {
					b.Fatal(err)
				}
				s.closeWorkers()
				defer s.off.stop()
				r := &allocRig{s: s, w: s.workers[0]}
				var hs []Conn
				for range 1000 {
					c, _ := r.open(b)
					hs = append(hs, s.handle(c))
				}
				benchSleep = sleep
				data := []byte("SELECT 1")
				for _, h := range hs { // make every backlog, start the pool
					benchDone.Add(1)
					h.Go(benchJob, data)
				}
				benchDone.Wait()
				b.ReportAllocs()
				i := 0
				t0 := time.Now()
				for b.Loop() {
					benchDone.Add(1)
					for hs[i%len(hs)].Go(benchJob, data) != Queued {
						runtime.Gosched() // backlog full: wait for the pool
					}
					i++
				}
				benchDone.Wait() // the rate counts until the last job is done
				b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "jobs/s")
			})
		}
	}
}
