package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/lease"
)

// TestMultiStream: two daemons, three streams, the real aws-kcl Node sample
// as the child. Every record is delivered once per stream (again only after
// a balancing steal); leases are Java multi-stream items; a SIGHUP adds a
// stream, and a stream deleted from Kinesis and from the list loses its
// leases after waitPeriodToDeleteFormerStreamsMillis (docs/multistream.md).
func TestMultiStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	for _, tc := range []struct {
		name     string
		kin, ddb testenv.Kind
	}{
		{"kinesalite", testenv.Kinesalite, testenv.Dynalite},
		{"kinesis-local", testenv.KinesisLocal, testenv.DynamoDBLocal},
	} {
		t.Run(tc.name, func(t *testing.T) { testMultiStream(t, tc.kin, tc.ddb) })
	}
}

func testMultiStream(t *testing.T, kin, ddb testenv.Kind) {
	e := newEnv(t, kin, ddb, 1)
	s1, s2, s3 := e.stream+"-1", e.stream+"-2", e.stream+"-3"
	for _, s := range []string{s1, s2, s3} {
		testenv.CreateStreamT(t, e.kc, s, 2)
	}
	const n = 100
	put := func(stream string) {
		t.Helper()
		var entries []ktypes.PutRecordsRequestEntry
		for i := 0; i < n; i++ {
			entries = append(entries, ktypes.PutRecordsRequestEntry{
				PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: []byte(fmt.Sprintf("%s|%d", stream, i))})
		}
		out, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords %s: %v", stream, err)
		}
	}
	put(s1)
	put(s2)
	multi := func(streams string) map[string]string {
		return map[string]string{"streamName": "", "streams": streams,
			"streamsCheckIntervalMillis": "1000", "waitPeriodToDeleteFormerStreamsMillis": "2000"}
	}
	props := func(worker, streams string) string {
		kv := multi(streams)
		kv["workerId"] = worker
		return e.props(worker, kv)
	}
	outs := []string{e.dir + "/w1.jsonl", e.dir + "/w2.jsonl"}
	d1 := e.startDaemon("w1", props("w1", s1+", "+s2), outs[0])
	d2 := e.startDaemon("w2", props("w2", s1+", "+s2), outs[1])
	counts := func() map[string]int {
		c := map[string]int{}
		for _, o := range outs {
			for _, r := range readOutput(t, o) {
				c[r.payload()]++
			}
		}
		return c
	}
	allOf := func(streams ...string) func() bool {
		return func() bool {
			c := counts()
			for _, s := range streams {
				for i := 0; i < n; i++ {
					if c[fmt.Sprintf("%s|%d", s, i)] == 0 {
						return false
					}
				}
			}
			return true
		}
	}
	waitFor(t, 120*time.Second, "every record of the first two streams", allOf(s1, s2), d1, d2)

	// Add s3, drop s1 from the list and from Kinesis, while running.
	put(s3)
	props("w1", s2+", "+s3)
	props("w2", s2+", "+s3)
	if _, err := e.kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(s1)}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*daemon{d1, d2} {
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 120*time.Second, "every record of the added stream", allOf(s2, s3), d1, d2)
	waitFor(t, 60*time.Second, "the deleted stream's leases to be deleted", func() bool {
		for _, l := range e.leases() {
			if strings.Contains(l.Key, ":"+s1+":") {
				return false
			}
		}
		return true
	}, d1, d2)

	// Lease items: Java DynamoDBMultiStreamLeaseSerializer's shape.
	per := map[string]int{}
	for _, l := range e.leases() {
		id, shardID, ok := lease.ParseMultiStreamKey(l.Key)
		if !ok || l.StreamName != id || l.ShardID != shardID {
			t.Errorf("lease %s: streamName %q shardId %q, want a multi-stream key and attributes", l.Key, l.StreamName, l.ShardID)
			continue
		}
		per[strings.Split(id, ":")[1]]++
	}
	if per[s2] != 2 || per[s3] != 2 || len(per) != 2 {
		t.Errorf("leases per stream %v, want 2 of %s and 2 of %s", per, s2, s3)
	}

	for _, d := range []*daemon{d1, d2} {
		if code := d.stop(60 * time.Second); code != 0 {
			t.Errorf("%s exit code %d", d.name, code)
		}
	}
	stolen := map[string]bool{}
	for _, d := range []*daemon{d1, d2} {
		for _, line := range strings.Split(grepLines(logOf(d), "took lease"), "\n") {
			if strings.Contains(line, `"steal": true`) {
				for _, s := range []string{s1, s2, s3} {
					if strings.Contains(line, ":"+s+":") {
						stolen[s] = true
					}
				}
			}
		}
	}
	dups := map[string]int{}
	for data, c := range counts() {
		if c > 1 {
			dups[data[:strings.LastIndex(data, "|")]]++
		}
	}
	for s, k := range dups {
		if !stolen[s] {
			t.Errorf("%d records of %s delivered more than once without a lease steal", k, s)
		}
	}
	t.Logf("records delivered twice per stream %v; streams with a stolen lease %v; leases %v", dups, stolen, per)
}
