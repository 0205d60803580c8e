package lockd

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// tcpStream is the Raft stream layer: a TCP listener plus a dialer that
// remembers every connection it made or accepted, so Close ends them all.
// raft.NetworkTransport.Close only closes the listener; connections pooled
// by peers would otherwise keep a handler goroutine reading until the peer
// goes away.
type tcpStream struct {
	ln        net.Listener
	advertise net.Addr

	mu     sync.Mutex            // guards conns and closed
	conns  map[*trackedConn]bool // live connections, both directions
	closed bool
}

var _ raft.StreamLayer = (*tcpStream)(nil)

func listenTCP(bind, advertise string) (*tcpStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	s := &tcpStream{ln: ln, advertise: ln.Addr(), conns: map[*trackedConn]bool{}}
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.advertise = a
	} else if a := ln.Addr().(*net.TCPAddr); a.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("BindAddr listens on all interfaces: set AdvertiseAddr to the address peers dial")
	}
	return s, nil
}

func (s *tcpStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: timeout}).Dial("tcp", string(addr))
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true) // the default, stated: small RPCs must not wait
	}
	return s.track(c)
}

func (s *tcpStream) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil, errors.New("stream layer closed")
	}
	tc := &trackedConn{Conn: c, s: s}
	s.conns[tc] = true
	return tc, nil
}

func (s *tcpStream) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*trackedConn]bool{}
	s.mu.Unlock()
	err := s.ln.Close()
	for c := range conns {
		c.Conn.Close()
	}
	return err
}

func (s *tcpStream) Addr() net.Addr { return s.advertise }

type trackedConn struct {
	net.Conn
	s    *tcpStream
	once sync.Once
}

func (c *trackedConn) Close() error {
	var err error
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}
