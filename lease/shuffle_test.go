package lease

import (
	"slices"
	"testing"
)

// TestShuffleLeadersJavaVectors covers Java
// DeterministicShuffleShardSyncLeaderDecider.electLeaders (deterministic 2.x leader).
func TestShuffleLeadersJavaVectors(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string // full order when known, else only want[0] checked
		full bool
	}{
		{"two", []string{"worker-b", "worker-a"}, []string{"worker-a"}, false},
		{"three", []string{"worker-c", "worker-a", "worker-b", "worker-a", ""}, []string{"worker-c"}, false},
		{"five", []string{"10.0.0.3-w1", "10.0.0.1-w1", "10.0.0.4-w9", "10.0.0.2-w1", "10.0.0.1-w2"},
			[]string{"10.0.0.4-w9", "10.0.0.1-w1", "10.0.0.2-w1", "10.0.0.1-w2", "10.0.0.3-w1"}, true},
		{"none", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ShuffleLeaders(tt.in)
			if tt.full {
				if !slices.Equal(got, tt.want) {
					t.Fatalf("ShuffleLeaders(%v) = %v, want %v", tt.in, got, tt.want)
				}
				return
			}
			if len(got) == 0 || got[0] != tt.want[0] {
				t.Fatalf("leader of %v = %v, want %s", tt.in, got, tt.want[0])
			}
		})
	}
}

func TestJavaRandomNextInt(t *testing.T) {
	// new Random(42).nextInt(10) sequence: 0, 3, 8, 4, 0 (well-known JVM output).
	r := newJavaRandom(42)
	want := []int32{0, 3, 8, 4, 0}
	for i, w := range want {
		if got := r.nextInt(10); got != w {
			t.Fatalf("nextInt #%d = %d, want %d", i, got, w)
		}
	}
}

func TestJavaStringCompare(t *testing.T) {
	// U+FF5E (BMP, 0xFF5E) sorts after U+1F600 (surrogates 0xD83D...) in Java, before it in UTF-8.
	if javaStringCompare("\U0001F600", "\uFF5E") >= 0 {
		t.Fatal("supplementary char must sort before U+FF5E in UTF-16 order")
	}
	if javaStringCompare("a", "b") >= 0 || javaStringCompare("b", "a") <= 0 || javaStringCompare("a", "a") != 0 {
		t.Fatal("ascii order")
	}
}
