package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
)

func authserverCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "authserver",
		Short: "Run the auth server: login, sessions, API tokens and lockout in front of ComfyUI",
		Long: "Serves listen_address as a reverse proxy to upstream_url (HTTP and WebSocket), with the login\n" +
			"pages and the mss-login API, and Prometheus metrics on metrics_address. It needs SECRET_KEY and\n" +
			"the users database, and no Kubernetes credentials.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if cfg.DebugMode {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return runAuthserver(cmd.Context(), cfg, log)
		},
	}
}

// runAuthserver opens (and migrates) the users database and serves until ctx ends.
func runAuthserver(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	db, applied, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if len(applied) > 0 {
		log.Info("users database migrated", "applied", applied)
	}
	tuneGC()
	srv, err := authserver.New(ctx, authserver.Options{Config: cfg, Store: db, Logger: log})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// authserverGCPercent is the auth server's GOGC unless the environment sets one. Its heap is
// a few MB of long-lived caches plus per-request garbage; at Go's default of 100 a proxy under
// load collects some 60 times a second and spends more CPU marking the caches than proxying
// (measured with hack/bench/proxy.sh: 1.4× the bare proxy's CPU per request at 100, 1.0× at
// 400). 400 keeps the heap at a few tens of MB; GOMEMLIMIT, when set, still bounds it.
const authserverGCPercent = 400

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(authserverGCPercent)
	}
}
