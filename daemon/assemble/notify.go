package assemble

import (
	"context"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/sdnotify"
)

// notifySystemd tells systemd (Type=notify) READY=1 once the scheduler is
// running, pings the watchdog while the daemon is alive (the /healthz
// check; also while a graceful stop is in progress), and sends STOPPING=1
// when stop begins. It returns when done is closed. Outside systemd it
// returns at once.
func notifySystemd(stop context.Context, done <-chan struct{}, n *sdnotify.Notifier, healthy, live func() error, held func() int, log *zap.Logger) {
	if !n.Enabled() {
		return
	}
	life, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with life: done closes it below
		<-done
		cancel()
	}()
	alive := func() error {
		if stop.Err() != nil {
			return nil // stopping gracefully is not a hang
		}
		return live()
	}
	wd := make(chan error, 1)
	go func() { wd <- n.RunWatchdog(life, alive) }()
	defer func() {
		cancel()
		if err := <-wd; err != nil {
			log.Warn("systemd watchdog", zap.Error(err))
		}
	}()

	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for ready := false; ; {
		select {
		case <-life.Done():
			return
		case <-stop.Done():
			if err := n.Stopping(); err != nil {
				log.Warn("systemd notify", zap.Error(err))
			}
			<-life.Done()
			return
		case <-t.C:
			if !ready && healthy() == nil {
				ready = true
				if err := n.Notify("READY=1\nSTATUS=running; leases held: " + strconv.Itoa(held())); err != nil {
					log.Warn("systemd notify", zap.Error(err))
				}
			}
		}
	}
}
