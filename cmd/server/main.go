// Command switchboard runs the Switchboard control plane: the REST API, the
// browser UI and the coordination services, on one PostgreSQL database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"switchboard/internal/app"
	"switchboard/internal/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := loadConfig(args)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated in loadConfig
	log := slog.New(web.LogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	ac, err := cfg.app()
	if err != nil {
		return err
	}
	ac.Log = log
	a, err := app.New(ctx, ac)
	if err != nil {
		return err
	}
	serveErr := a.Serve(ctx)
	if err := a.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}
