package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// benchDial opens a live stream with a bearer credential.
func benchDial(tb testing.TB, s *testServer, path, token string) *websocket.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+path, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		tb.Fatalf("dial %s: %v", path, err)
	}
	return conn
}

// benchReadOne reads one message; false once the stream is closed.
func benchReadOne(conn *websocket.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := conn.Read(ctx)
	return err == nil
}

// benchReadUntilClosed reads until the server closes the stream and returns the
// close code (-1 when the connection broke without one).
func benchReadUntilClosed(conn *websocket.Conn) websocket.StatusCode {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			conn.CloseNow()
			return websocket.CloseStatus(err)
		}
	}
}
