package assemble

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/internal/sdnotify"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/subprocess"
)

// reloadableKeys are the keys a reload applies: the child's command and
// settings. Every other changed key is named in a warning and needs a
// restart (the lease table, stream, workerId, retrieval and lease timing are
// fixed for the life of a worker).
var reloadableKeys = map[string]bool{
	"executableName":           true,
	"timeoutInSeconds":         true,
	"childShutdownGraceMillis": true,
	"childStderrLogLevel":      true,
}

// applyReloads applies each configuration from reloads until the returned
// stop is called (stop waits for a reload in progress). It starts once
// running reports nil (the scheduler runs), so that a reload asked for
// during start-up neither races the start nor sends READY=1 before the
// daemon is ready. Under systemd it sends RELOADING=1 before and READY=1
// after each.
func (d *assembled) applyReloads(ctx context.Context, reloads <-chan *properties.Config, running func() error, n *sdnotify.Notifier, log *zap.Logger) (stop func()) {
	if reloads == nil {
		return func() {}
	}
	return ctxutil.Go(ctx, func(ctx context.Context) {
		for running() != nil {
			if ctxutil.Sleep(ctx, 100*time.Millisecond) != nil {
				return
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case cfg := <-reloads:
				notify(n, log, fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
				if err := d.reload(ctx, cfg, log); err != nil {
					log.Error("reload failed; the previous configuration stays in effect", zap.Error(err))
				}
				notify(n, log, "READY=1")
			}
		}
	})
}

// reload applies cfg: when the child's command or settings changed, every
// shard gets a new child, one shard at a time, keeping its lease
// (daemon.Scheduler.RestartChildren). Keys that cannot change at runtime
// are named in a warning and keep their running value.
func (d *assembled) reload(ctx context.Context, cfg *properties.Config, log *zap.Logger) error {
	applied, fixed := diffSettings(d.cfg, cfg)
	applied, fixed = d.reloadStreams(cfg, applied, fixed, log)
	if len(fixed) > 0 {
		log.Warn("changed keys cannot take effect at runtime; restart multilangd to apply them",
			zap.Strings("keys", fixed))
	}
	if len(applied) == 0 {
		log.Info("configuration re-read; nothing to apply", zap.String("file", cfg.Source))
		return nil
	}
	if _, _, err := subprocess.ResolveCommand(cfg.ExecutableName, ""); err != nil {
		return fmt.Errorf("executableName %q does not resolve to an executable file: %w", cfg.ExecutableName, err)
	}
	next := childConfig(cfg)
	d.children.Store(&next)
	keep := *d.cfg
	keep.ExecutableName, keep.TimeoutInSeconds = cfg.ExecutableName, cfg.TimeoutInSeconds
	keep.ChildShutdownGrace, keep.ChildStderrLevel = cfg.ChildShutdownGrace, cfg.ChildStderrLevel
	d.cfg = &keep
	log.Info("reloading: restarting children one shard at a time with the new settings",
		zap.Strings("keys", applied), zap.String("executableName", cfg.ExecutableName))
	start := time.Now()
	if err := d.scheduler.RestartChildren(ctx); err != nil {
		return fmt.Errorf("restarting children: %w", err)
	}
	log.Info("reload done: every shard runs the new child", zap.Duration("took", time.Since(start)))
	return nil
}

// diffSettings returns the keys whose resolved value differs, split into
// those a reload applies and the rest. Keys set in neither file are left
// out: their values are defaults, derived from other keys (reported
// themselves) or generated (a random workerId).
func diffSettings(old, new *properties.Config) (applied, fixed []string) {
	was := map[string]properties.Setting{}
	for _, s := range old.Settings() {
		was[s.Key] = s
	}
	seen := map[string]bool{}
	for _, s := range new.Settings() {
		seen[s.Key] = true
		w, ok := was[s.Key]
		if ok && (w.Value == s.Value || (w.Line == 0 && s.Line == 0)) {
			continue
		}
		if reloadableKeys[s.Key] {
			applied = append(applied, s.Key)
		} else {
			fixed = append(fixed, s.Key)
		}
	}
	for k, w := range was {
		if !seen[k] && w.Line > 0 && !reloadableKeys[k] {
			fixed = append(fixed, k)
		}
	}
	return applied, fixed
}

func notify(n *sdnotify.Notifier, log *zap.Logger, state string) {
	if err := n.Notify(state); err != nil {
		log.Warn("systemd notify", zap.Error(err))
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd expects
// with RELOADING=1 (sd_notify(3)).
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / int64(time.Microsecond)
}

// reloadStreams applies a changed `streams` list of a multi-stream
// application: new streams are synced and consumed, removed ones become
// former streams (docs/multistream.md). It returns the changed keys left
// for reload; a switch between single and multi-stream needs a restart.
func (d *assembled) reloadStreams(cfg *properties.Config, applied, fixed []string, log *zap.Logger) (applied2, fixed2 []string) {
	i := slices.Index(fixed, "streams")
	if i < 0 || d.streams == nil || !cfg.MultiStream() {
		return applied, fixed
	}
	fixed = slices.Delete(fixed, i, i+1)
	d.streams.setStreams(cfg)
	keep := *d.cfg
	keep.Streams = cfg.Streams
	d.cfg = &keep
	log.Info("reloading: stream list changed", zap.Stringer("streams", streamList(cfg.Streams)))
	return applied, fixed
}

type streamList []properties.StreamConfig

func (l streamList) String() string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}
