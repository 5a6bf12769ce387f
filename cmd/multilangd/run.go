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
	clients, err := awsclient.New(ctx, cfg, log.Named("aws"))
	if err != nil {
		return err
	}
	return assemble.Run(ctx, cfg, assemble.Clients{Kinesis: clients.Kinesis, DynamoDB: clients.DynamoDB}, log)
}
