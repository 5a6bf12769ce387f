//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Resharding under load: two workers on a 4-shard stream; split, merge,
// split again while the producer runs; one worker is SIGKILLed between the
// reshards and restarted. Nothing is lost, and no child shard delivers
// before its parents' last record was delivered.
func TestReshardUnderLoadWithKill(t *testing.T) {
	f := newFleet(t, 4)
	f.start("w1", nil)
	w2 := f.start("w2", nil)
	p := f.startProducer(20, 500*time.Millisecond)
	f.waitShardsProgress(4, 120*time.Second)
	f.fault("split shard 0", func() { f.split(0) }, nil)
	f.waitShardsProgress(4, 90*time.Second)
	f.fault("SIGKILL w2", w2.kill, nil)
	f.fault("merge the two lowest shards", func() { f.merge(0) }, nil)
	f.waitShardsProgress(3, 90*time.Second)
	f.start("w2", nil)
	f.fault("split the last shard", func() { f.split(2) }, nil)
	f.waitShardsProgress(4, 90*time.Second)
	time.Sleep(5 * time.Second)
	f.finish(p, 150*time.Second, f.parentsFirst())
}

// parentsFirst checks that every child shard's first delivery comes after
// the last first-time delivery of each of its parents.
func (f *fleet) parentsFirst() func(Result, []Event) []string {
	return func(_ Result, evs []Event) []string {
		out, err := f.kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(f.stream)})
		if err != nil {
			return []string{fmt.Sprintf("ListShards: %v", err)}
		}
		first, last := map[string]int64{}, map[string]int64{}
		for _, e := range evs {
			if e.Ev != "rec" {
				continue
			}
			if _, ok := first[e.Shard]; !ok {
				first[e.Shard] = e.T
			}
			last[e.Shard] = e.T
		}
		var v []string
		children := 0
		for _, s := range out.Shards {
			c := aws.ToString(s.ShardId)
			cf, ok := first[c]
			for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
				if p == nil || !ok {
					continue
				}
				children++
				if pl, ok := last[aws.ToString(p)]; ok && pl > cf {
					v = append(v, fmt.Sprintf("child %s delivered at %s before parent %s's last record at %s", c,
						time.Unix(0, cf).Format("15:04:05.000"), aws.ToString(p), time.Unix(0, pl).Format("15:04:05.000")))
				}
			}
		}
		if children == 0 {
			v = append(v, "no child shard delivered anything")
		}
		return v
	}
}
