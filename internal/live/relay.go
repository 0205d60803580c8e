package live

import (
	"context"
	"sync"
)

// Relay makes a Source of a subscription's typed channel: conv turns each
// value into a Message, or ends the source with an error (a terminal value
// that carries one). When in closes, end (if not nil) says why. release
// (if not nil) is called once when the source is closed, after the relay
// goroutine has stopped.
func Relay[In any](ctx context.Context, in <-chan In, conv func(In) (Message, error), end func() error, release func()) Source {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan Message)
	done := make(chan struct{})
	var endErr error // written before out is closed, read after
	go func() {
		defer close(done)
		defer close(out)
		for {
			var v In
			var ok bool
			select {
			case v, ok = <-in:
				if !ok {
					if end != nil {
						endErr = end()
					}
					return
				}
			case <-ctx.Done():
				return
			}
			m, err := conv(v)
			if err != nil {
				endErr = err
				return
			}
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	return Source{
		C:   out,
		Err: func() error { return endErr },
		Close: func() {
			once.Do(func() {
				cancel()
				<-done
				if release != nil {
					release()
				}
			})
		},
	}
}
