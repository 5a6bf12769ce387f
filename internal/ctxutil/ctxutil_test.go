package ctxutil

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"zero duration, live context", context.Background(), 0, nil},
		{"negative duration, live context", context.Background(), -time.Second, nil},
		{"short sleep completes", context.Background(), time.Millisecond, nil},
		{"cancelled context, zero duration", cancelled, 0, context.Canceled},
		{"cancelled context, long duration", cancelled, time.Hour, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
				t.Fatalf("Sleep = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSleepEndsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
}

type key struct{}

func TestGraceContextKeepsValuesAndSurvivesParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	rctx, cancel := GraceContext(parent, time.Hour, time.Hour)
	defer cancel()
	if got := rctx.Value(key{}); got != "v" {
		t.Fatalf("value = %v, want v", got)
	}
	cancelParent()
	// The grace period is an hour: the request context must still be live.
	select {
	case <-rctx.Done():
		t.Fatal("request context ended with its parent despite the grace period")
	default:
	}
	if rctx.Err() != nil {
		t.Fatalf("Err = %v, want nil", rctx.Err())
	}
}

func TestGraceContextEndsAfterGrace(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	rctx, cancel := GraceContext(parent, time.Hour, time.Millisecond)
	defer cancel()
	cancelParent()
	<-rctx.Done() // would block for an hour without the grace cut-off
	if !errors.Is(rctx.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want context.Canceled", rctx.Err())
	}
}

func TestGraceContextParentAlreadyDone(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	cancelParent()
	rctx, cancel := GraceContext(parent, time.Hour, time.Millisecond)
	defer cancel()
	<-rctx.Done()
}

func TestGraceContextTimeout(t *testing.T) {
	rctx, cancel := GraceContext(context.Background(), time.Millisecond, time.Hour)
	defer cancel()
	<-rctx.Done()
	if !errors.Is(rctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, want DeadlineExceeded", rctx.Err())
	}
}

func TestGraceContextCancel(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	rctx, cancel := GraceContext(parent, time.Hour, time.Hour)
	cancel()
	if !errors.Is(rctx.Err(), context.Canceled) {
		t.Fatalf("Err = %v, want context.Canceled", rctx.Err())
	}
	// Cancelling the parent afterwards must not start anything that outlives
	// the request (checked by the race detector and goroutine-free return).
	cancelParent()
}

func TestGraceContextCancelDuringGrace(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	rctx, cancel := GraceContext(parent, time.Hour, time.Hour)
	cancelParent()
	cancel() // must end the request at once and let the grace goroutine exit
	<-rctx.Done()
}

func TestGoStopCancelsAndWaits(t *testing.T) {
	var ended atomic.Bool
	stop := Go(context.Background(), func(ctx context.Context) {
		<-ctx.Done()
		ended.Store(true)
	})
	stop()
	if !ended.Load() {
		t.Fatal("stop returned before fn")
	}
}
