package wsclient

// EchoPayload fills p with message seq of a connection: 16 hex digits of
// seq, then letters that depend on seq and position. It is ASCII, so valid
// as text, and it cannot be mistaken for a time push (IsPush). The echo and
// soak workloads send it and check what comes back against it.
func EchoPayload(p []byte, seq uint64) {
	const hexd = "0123456789abcdef"
	for i := range p {
		if i < 16 {
			p[i] = hexd[(seq>>(60-4*uint(i)))&0xF]
		} else {
			p[i] = 'a' + byte((seq+uint64(i))%26)
		}
	}
}
