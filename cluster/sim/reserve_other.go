//go:build !unix

package sim

import "io"

// reservePort is a no-op where raw sockets are not at hand: a stopped
// node's port is simply free until it starts again.
func reservePort(int) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
