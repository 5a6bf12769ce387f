// Package ctxutil holds small context helpers shared by the packages that
// call AWS: a context-aware sleep and a request context that outlives its
// parent's cancellation by a short grace period.
package ctxutil

import (
	"context"
	"time"
)

// Sleep waits d or until ctx is done, whichever comes first. It returns
// ctx.Err() when ctx ended (also when d <= 0 and ctx is already done), nil
// otherwise.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// GraceContext returns a context for one request: it carries ctx's values,
// ends timeout from now, and ends grace after ctx ends, whichever comes
// first. Calling the returned cancel function ends it at once and releases
// its resources; it must be called when the request is done.
//
// It exists because some emulators (kinesalite, dynalite) crash on requests
// the client aborts: letting an in-flight call finish briefly after the
// caller stops is harmless on AWS.
func GraceContext(ctx context.Context, timeout, grace time.Duration) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-rctx.Done():
		}
	})
	return rctx, func() {
		stop()
		cancel()
	}
}

// Go runs fn on its own goroutine with a context derived from ctx, and
// returns stop: it cancels that context and waits for fn to return. The
// caller owns the goroutine through stop, which it must call.
func Go(ctx context.Context, fn func(ctx context.Context)) (stop func()) {
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(gctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
