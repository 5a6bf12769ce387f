package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/properties"
)

// reloadOnSIGHUP re-reads the properties file at path on every SIGHUP and
// hands each configuration that loads to the daemon (docs/operations.md
// "Reload"); a file that does not load is logged, every problem on its own
// line, and the running configuration stays. stop ends the watch.
func reloadOnSIGHUP(ctx context.Context, path string, log *zap.Logger) (reloads <-chan *properties.Config, stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	out := make(chan *properties.Config)
	stopWatch := ctxutil.Go(ctx, func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cfg := loadForReload(path, log)
			if cfg == nil {
				continue
			}
			select {
			case out <- cfg:
			case <-ctx.Done():
				return
			}
		}
	})
	return out, func() {
		signal.Stop(hup)
		stopWatch()
	}
}

// loadForReload re-reads path; nil (every problem logged) when it does not load.
func loadForReload(path string, log *zap.Logger) *properties.Config {
	log.Info("SIGHUP: re-reading the properties file", zap.String("file", path))
	cfg, err := properties.Load(path)
	if err != nil {
		for _, e := range properties.Errors(err) {
			log.Error("reload: invalid configuration; keeping the running one", zap.String("problem", e.Error()))
		}
		if len(properties.Errors(err)) == 0 {
			log.Error("reload: cannot load the properties file; keeping the running configuration", zap.Error(err))
		}
		return nil
	}
	for _, w := range cfg.Warnings {
		log.Warn(w.Message, zap.String("file", w.File), zap.Int("line", w.Line), zap.String("key", w.Key))
	}
	return cfg
}
