// Command plainloop is the bench's referee (e2e TestBench): the plain
// aws-sdk-go-v2 GetRecords loop a user could write instead of running
// multilangd, reading every given shard in parallel from TRIM_HORIZON until
// its last sequence number, sleeping -idle after every call as the daemon
// does. It prints the Kinesis records and data bytes it read.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func main() {
	endpoint := flag.String("endpoint", "", "Kinesis endpoint")
	stream := flag.String("stream", "", "stream name")
	idle := flag.Duration("idle", 200*time.Millisecond, "sleep after every GetRecords")
	targets := flag.String("targets", "", "shardId=lastSequenceNumber,...")
	flag.Parse()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(*endpoint) })
	var records, bytes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, t := range strings.Split(*targets, ",") {
		shard, last, _ := strings.Cut(t, "=")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := read(ctx, c, *stream, shard, last, *idle, &records, &bytes); err != nil {
				errs <- fmt.Errorf("%s: %w", shard, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("records=%d bytes=%d hwm_kb=%d\n", records.Load(), bytes.Load(), peakKB())
}

// peakKB returns this process's peak resident set (VmHWM) in KiB. The
// parent cannot take it from wait4's ru_maxrss, which Linux carries over
// from the parent's own peak at fork.
func peakKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func read(ctx context.Context, c *kinesis.Client, stream, shard, last string, idle time.Duration, records, bytes *atomic.Int64) error {
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return err
	}
	iter := it.ShardIterator
	for {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
		if err != nil {
			return err
		}
		for _, r := range out.Records {
			bytes.Add(int64(len(r.Data)))
		}
		records.Add(int64(len(out.Records)))
		if n := len(out.Records); n > 0 && aws.ToString(out.Records[n-1].SequenceNumber) == last {
			return nil
		}
		iter = out.NextShardIterator
		time.Sleep(idle)
	}
}
