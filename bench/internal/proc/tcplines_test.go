package proc

import "testing"

func TestCountTCPLines(t *testing.T) {
	// Port 8080 is 1F90; 08 is CLOSE_WAIT, 01 ESTABLISHED, 0A LISTEN.
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 0100007F:1F90 0100007F:D2A4 08 00000000:00000000 00:00000000 00000000  1000        0 2 1
   2: 0100007F:1F90 0200007F:D2A5 08 00000000:00000000 00:00000000 00000000  1000        0 3 1
   3: 0100007F:D2A4 0100007F:1F90 05 00000000:00000000 00:00000000 00000000  1000        0 4 1
   4: 0100007F:1F91 0100007F:D2A6 08 00000000:00000000 00:00000000 00000000  1000        0 5 1
   5: 0100007F:1F90 0100007F:D2A7 01 00000000:00000000 00:00000000 00000000  1000        0 6 1
`
	if got := CountTCPLines([]byte(table), 8080, TCPCloseWait); got != 2 {
		t.Fatalf("CLOSE_WAIT on 8080: got %d; want 2", got)
	}
	if got := CountTCPLines([]byte(table), 8080, "01"); got != 1 {
		t.Fatalf("ESTABLISHED on 8080: got %d; want 1", got)
	}
}
