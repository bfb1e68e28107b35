//go:build unix

package sim

import (
	"io"
	"syscall"
)

// reservePort binds a TCP socket to 127.0.0.1:port without listening on it.
// While a node is stopped its port must refuse connections (a bound socket
// that does not listen answers with a reset), yet stay the node's: without
// the reservation another listener or an outgoing connection's ephemeral
// port can take it, and the node could not start again on its own port.
func reservePort(port int) (io.Closer, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// SO_REUSEADDR as net.Listen sets it, so that the listener of the
	// restarted node can bind once the reservation is closed.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return fdCloser(fd), nil
}

type fdCloser int

func (f fdCloser) Close() error { return syscall.Close(int(f)) }
