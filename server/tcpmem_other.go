//go:build !linux

package server

import "errors"

// ReadTCPMemory is Linux only.
func ReadTCPMemory() (TCPMemory, error) {
	return TCPMemory{}, errors.New("server: TCP memory is read from Linux's /proc")
}
