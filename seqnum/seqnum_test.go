package seqnum

import (
	"errors"
	"testing"
)

func TestCompare(t *testing.T) {
	const big1 = "49590338271490256608559692538361571095921575989136588898"
	const big2 = "49590338271490256608559692538361571095921575989136588899"
	tests := []struct {
		name string
		a, b ESN
		want int
	}{
		{"equal digits", New("5", 0), New("5", 0), 0},
		{"digits less", New("5", 0), New("6", 0), -1},
		{"numeric not lexical", New("9", 0), New("10", 0), -1},
		{"leading zero", New("010", 0), New("9", 0), 1},
		{"56 digits", New(big1, 0), New(big2, 0), -1},
		{"sub breaks tie", New(big1, 3), New(big1, 2), 1},
		{"at_timestamp < trim_horizon", Sentinel(AtTimestamp), Sentinel(TrimHorizon), -1},
		{"trim_horizon < latest", Sentinel(TrimHorizon), Sentinel(Latest), -1},
		{"latest < 0", Sentinel(Latest), New("0", 0), -1},
		{"shard end > digits", Sentinel(ShardEnd), New(big2, 99), 1},
		{"digits < shard end", New(big2, 99), Sentinel(ShardEnd), -1},
		{"shard end equal", Sentinel(ShardEnd), Sentinel(ShardEnd), 0},
		{"shard end > trim", Sentinel(ShardEnd), Sentinel(TrimHorizon), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compare(tt.a, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Compare(%v,%v) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			back, _ := Compare(tt.b, tt.a)
			if back != -tt.want {
				t.Fatalf("Compare not antisymmetric: %d vs %d", got, back)
			}
		})
	}
}

func TestCompareInvalid(t *testing.T) {
	for _, bad := range []string{"", "abc", "12a", "-1", "shard_end", "1.0"} {
		if _, err := Compare(New(bad, 0), New("1", 0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Compare(%q) err = %v, want ErrInvalid", bad, err)
		}
		if _, err := Compare(Sentinel(ShardEnd), New(bad, 0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Compare(SHARD_END, %q) err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		e  ESN
		ok bool
	}{
		{New("123", 0), true},
		{Sentinel(TrimHorizon), true},
		{Sentinel(ShardEnd), true},
		{New("123", -1), false},
		{New("x", 0), false},
		{New("", 0), false},
	}
	for _, tt := range tests {
		if err := tt.e.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%v) = %v, want ok=%v", tt.e, err, tt.ok)
		}
	}
}

func TestString(t *testing.T) {
	if s := New("7", 0).String(); s != "7" {
		t.Fatal(s)
	}
	if s := New("7", 2).String(); s != "7/2" {
		t.Fatal(s)
	}
}
