package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/retrieval/kpl"
)

// TestPut runs `multilangd put` in-process against kinesalite and reads the
// stream back.
func TestPut(t *testing.T) {
	e := testenv.StartT(t, testenv.Kinesalite)
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)
	c := kinesis.NewFromConfig(testenv.AWSConfig(), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(e.Endpoint)
		o.HTTPClient = hc
	})
	// The -p case takes credentials from the environment chain.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDPUTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	props := filepath.Join(t.TempDir(), "app.properties")
	if err := os.WriteFile(props, []byte("executableName = app.py\napplicationName = app\nstreamName = from-file\n"+
		"AwsCredentialsProvider = DefaultCredentialsProvider\nregionName = us-east-1\nkinesisEndpoint = "+e.Endpoint+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		args       []string
		stream     string
		wantCode   int
		wantOut    []string
		wantErr    string
		wantUser   int
		wantAggMin int // at least this many aggregates
	}{
		{name: "flags, create, mixed aggregates",
			args:   []string{"--endpoint", e.Endpoint, "--stream", "flags", "--create-shards", "2", "--count", "60", "--rate", "0", "--aggregate-every", "2", "--records-per-aggregate", "5"},
			stream: "flags", wantOut: []string{"created stream flags with 2 shards", "put 60 records"}, wantUser: 60, wantAggMin: 5},
		{name: "properties file, all aggregated, padded",
			args:   []string{"-p", props, "--create-shards", "1", "--count", "30", "--rate", "1000", "--aggregate", "--size", "100"},
			stream: "from-file", wantOut: []string{"put 30 records"}, wantUser: 30, wantAggMin: 3},
		{name: "existing stream is reused", args: []string{"--endpoint", e.Endpoint, "--stream", "flags", "--create-shards", "3", "--count", "5", "--rate", "0"},
			stream: "flags", wantOut: []string{"put 5 records"}, wantUser: 65},
		{name: "missing stream", args: []string{"--endpoint", e.Endpoint, "--stream", "nope", "--count", "1"}, wantCode: 1, wantErr: "ResourceNotFound"},
		{name: "no stream", args: []string{"--endpoint", e.Endpoint, "--count", "1"}, wantCode: 1, wantErr: "no stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"put"}, tc.args...), strings.NewReader(""), &stdout, &stderr, os.Getenv)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stdout %s; stderr %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			if tc.wantErr != "" && !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
			if tc.stream == "" {
				return
			}
			users, aggs := readStream(t, c, tc.stream)
			if len(users) != tc.wantUser || aggs < tc.wantAggMin {
				t.Fatalf("stream %s holds %d user records in %d aggregates; want %d, ≥ %d", tc.stream, len(users), aggs, tc.wantUser, tc.wantAggMin)
			}
			if strings.Contains(strings.Join(tc.args, " "), "--size 100") {
				for _, u := range users {
					if len(u) != 100 {
						t.Fatalf("payload %q is %d bytes, want 100", u, len(u))
					}
				}
			}
		})
	}
}

// readStream returns every user payload in the stream and the number of
// aggregates they came in.
func readStream(t *testing.T, c *kinesis.Client, stream string) (users []string, aggregates int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: s.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		for iter := it.ShardIterator; ; {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Records) == 0 {
				break
			}
			for _, r := range out.Records {
				recs := kpl.Deaggregate(record.Record{Data: r.Data, SequenceNumber: aws.ToString(r.SequenceNumber)},
					aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey))
				if len(recs) > 0 && recs[0].Aggregated {
					aggregates++
				}
				for _, u := range recs {
					users = append(users, string(u.Data))
				}
			}
			iter = out.NextShardIterator
		}
	}
	sort.Strings(users)
	return users, aggregates
}
