package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/awsclient"
	"github.com/multilangd/multilangd/daemon/assemble"
	"github.com/multilangd/multilangd/properties"
)

// runDaemon runs the worker until ctx is cancelled, then stops gracefully
// (shutdownRequested, leaseLost, lease release) and returns nil.
func runDaemon(ctx context.Context, cfg *properties.Config, log *zap.Logger) error {
	// Watch SIGHUP from the start: its default action would end the process
	// during the start-up checks; a reload asked for then is applied once
	// the daemon runs.
	reloads, stopReloads := reloadOnSIGHUP(ctx, cfg.Source, log.Named("reload"))
	defer stopReloads()
	if err := checkExecutable(cfg); err != nil {
		return err
	}
	clients, err := awsclient.New(ctx, cfg, log.Named("aws"))
	if err != nil {
		return err
	}
	if err := checkAWS(ctx, cfg, clients, log.Named("preflight")); err != nil {
		if ctx.Err() != nil {
			return nil // stopped during start-up
		}
		return err
	}
	ac := assemble.Clients{Kinesis: clients.Kinesis, DynamoDB: clients.DynamoDB}
	if cloudWatchUsed(cfg) {
		ac.CloudWatch = clients.CloudWatch
	}
	return assemble.RunReloadable(ctx, cfg, ac, reloads, log)
}
