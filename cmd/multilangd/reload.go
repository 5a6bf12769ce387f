package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"

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
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-wctx.Done():
				return
			case <-hup:
			}
			log.Info("SIGHUP: re-reading the properties file", zap.String("file", path))
			cfg, err := properties.Load(path)
			if err != nil {
				for _, e := range properties.Errors(err) {
					log.Error("reload: invalid configuration; keeping the running one", zap.String("problem", e.Error()))
				}
				if len(properties.Errors(err)) == 0 {
					log.Error("reload: cannot load the properties file; keeping the running configuration", zap.Error(err))
				}
				continue
			}
			for _, w := range cfg.Warnings {
				log.Warn(w.Message, zap.String("file", w.File), zap.Int("line", w.Line), zap.String("key", w.Key))
			}
			select {
			case out <- cfg:
			case <-wctx.Done():
				return
			}
		}
	}()
	return out, func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
