package main

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
)

// errDaemonNotAvailable is returned until the daemon package is wired in.
var errDaemonNotAvailable = errors.New("the multilangd daemon is not yet available in this build; the configuration is valid (see `multilangd validate`)")

// runDaemon runs the worker until ctx is cancelled. Stub: engineer F replaces
// this file wholesale.
func runDaemon(ctx context.Context, cfg *properties.Config, log *zap.Logger) error {
	_ = ctx
	_ = cfg
	_ = log
	return errDaemonNotAvailable
}
