package main

import (
	"context"
	"log/slog"
	"time"
)

// sweepEvery runs sweep (a deletion of expired rows) every interval until
// ctx ends; an error is logged and the next round tries again.
func sweepEvery(ctx context.Context, log *slog.Logger, what string, every time.Duration, sweep func(context.Context) (int64, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := sweep(ctx); err != nil && ctx.Err() == nil {
				log.Error("sweep "+what, "err", err)
			}
		}
	}
}
