//go:build reliability

package reliability

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/multilangd/multilangd/retrieval/kpl"
)

// Bad input: records with empty data, 1 MiB data, binary data and a
// partition key that is not valid UTF-8, a KPL aggregate with a bad MD5
// (delivered unchanged as one record, as Java's AggregatorUtil does), and a
// child that checkpoints a sequence number it was never given (refused with
// an error; the daemon keeps going). Every record arrives with its data
// intact.
func TestBadInput(t *testing.T) {
	f := newFleet(t, 2)
	f.childEnv = []string{"REL_BAD_CHECKPOINT=1"}
	f.start("w1", nil)
	p := f.startProducer(10, 500*time.Millisecond)
	f.waitShardsProgress(2, 120*time.Second)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(7))
	binary := make([]byte, 4096)
	rng.Read(binary)
	big := make([]byte, 1<<20-16)
	rng.Read(big)
	corrupt, err := kpl.Aggregate([]kpl.UserRecord{{PartitionKey: "agg", Data: []byte("a")}, {PartitionKey: "agg", Data: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	corrupt[len(corrupt)-1] ^= 0xff
	inputs := []struct {
		what string
		e    entry
	}{
		{"empty data", entry{pk: "empty", data: []byte{}}},
		{"4 KiB of random binary data (NUL, newlines, invalid UTF-8)", entry{pk: "binary", data: binary}},
		{"a partition key that is not valid UTF-8", entry{pk: "pk-\xff\xfe-\xc0", data: []byte("non-utf8-pk")}},
		{"a KPL aggregate with a bad MD5", entry{pk: "agg", data: corrupt}},
		{"1 MiB of random data", entry{pk: "big", data: big}},
	}
	var what []string
	for _, in := range inputs {
		what = append(what, in.what)
	}
	what = append(what, "the child checkpoints a sequence number it was never given (once per child)")
	f.fault(joinSemi(what), func() {
		for _, in := range inputs {
			if err := f.put(ctx, []entry{in.e}); err != nil {
				t.Errorf("put %s: %v", in.what, err)
			}
		}
	}, nil)
	f.waitShardsProgress(2, 90*time.Second)
	time.Sleep(3 * time.Second)
	f.finish(p, 120*time.Second, f.badCheckpointsRefused)
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

// badCheckpointsRefused checks that the daemon answered the child's
// checkpoint at a sequence number never given with an error.
func (f *fleet) badCheckpointsRefused(_ Result, evs []Event) []string {
	refused := 0
	for _, e := range evs {
		if e.Ev == "badcp" {
			if e.Err == "" {
				return []string{"checkpoint at a sequence number never given was accepted"}
			}
			refused++
		}
	}
	if refused == 0 {
		return []string{"the child never tried a checkpoint at a sequence number it was not given"}
	}
	f.t.Logf("%d checkpoints at a sequence number never given refused", refused)
	return nil
}
