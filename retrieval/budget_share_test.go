package retrieval

import (
	"context"
	"testing"
	"time"
)

// TestBudgetShareIsFair: a hot group holding the whole budget cannot take
// released room while a quiet group waits; the quiet group gets it, and
// the hot group is then held to its half until the quiet one stops waiting.
func TestBudgetShareIsFair(t *testing.T) {
	ctx := context.Background()
	root := NewBudget(1000)
	hot, quiet := root.Share("hot"), root.Share("quiet")
	if hot.Limit() != 1000 || quiet.Share("x").Limit() != 1000 {
		t.Fatal("a share does not report its root's limit")
	}
	if n, _ := hot.reserve(ctx, 1000, 100); n != 1000 {
		t.Fatalf("uncontended hot reservation got %d, want 1000", n)
	}
	quietGot := make(chan int64)
	go func() {
		n, _ := quiet.reserve(ctx, 400, 100)
		quietGot <- n
	}()
	waitFor(t, func() bool {
		root.mu.Lock()
		defer root.mu.Unlock()
		return root.groups["quiet"] != nil && root.groups["quiet"].waiting == 1
	})
	hotGot := make(chan int64)
	go func() {
		n, _ := hot.reserve(ctx, 1000, 100) // over its share while quiet waits
		hotGot <- n
	}()
	time.Sleep(20 * time.Millisecond)
	hot.release(300)
	select {
	case n := <-quietGot:
		if n != 300 {
			t.Fatalf("quiet got %d of the 300 released, want 300", n)
		}
	case n := <-hotGot:
		t.Fatalf("hot took %d while quiet waited", n)
	case <-time.After(5 * time.Second):
		t.Fatal("quiet never got the released room")
	}
	// hot holds 700 > its half (500): it waits until it is back under.
	hot.release(400) // hot 300, quiet 300, free 400
	if n := <-hotGot; n != 400 {
		t.Fatalf("hot got %d after falling under its share, want the 400 free", n)
	}
	if root.Used() != 1000 {
		t.Fatalf("root used %d, want 1000", root.Used())
	}
	hot.release(700)
	quiet.release(300)
	root.mu.Lock()
	defer root.mu.Unlock()
	if root.used != 0 || len(root.groups) != 0 {
		t.Fatalf("after every release: used %d, groups %v", root.used, root.groups)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}
