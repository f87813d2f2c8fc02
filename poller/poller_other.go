//go:build !linux

package poller

// New reports ErrUnsupported: wsmill's poller needs Linux epoll.
func New(dispatch Dispatch, onWaitError func(error)) (Poller, error) {
	return nil, ErrUnsupported
}
