package cwmetrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/multilangd/multilangd/internal/testenv"
)

// The real SDK client against the signature-checking stand-in: the datums
// arrive decoded with names, dimensions, units and statistic sets; a request
// signed with the wrong secret is rejected.
func TestPublishToStandIn(t *testing.T) {
	cw := testenv.StartCloudWatch()
	defer cw.Close()
	client := func(secret string) *cloudwatch.Client {
		cfg := testenv.AWSConfig()
		cfg.Credentials = credentials.NewStaticCredentialsProvider(testenv.AccessKey, secret, "")
		return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
			o.BaseEndpoint = aws.String(cw.Endpoint)
			o.RetryMaxAttempts = 1
		})
	}
	p := New(client(testenv.SecretKey), Config{Namespace: "app", BufferTime: time.Hour})
	p.Scope("ProcessTask").AddDimension(DimShardID, "shardId-0").
		Add("RecordsProcessed", 3, types.StandardUnitCount, Summary).
		Add("RecordsProcessed", 5, types.StandardUnitCount, Summary).
		AddLatency("RecordProcessor.processRecords", 12*time.Millisecond, Summary).End()
	p.flush(context.Background())
	reqs := cw.Requests()
	if len(reqs) != 1 || reqs[0].Namespace != "app" || len(reqs[0].Datums) != 2 {
		t.Fatalf("requests %+v, rejected %v", reqs, cw.Rejected())
	}
	got := map[string]testenv.Datum{}
	for _, d := range reqs[0].Datums {
		got[d.Key()] = d
	}
	rp := got["RecordsProcessed{Operation=ProcessTask,ShardId=shardId-0}"]
	if rp.Unit != "Count" || rp.SampleCount != 2 || rp.Sum != 8 || rp.Minimum != 3 || rp.Maximum != 5 {
		t.Fatalf("RecordsProcessed = %+v", rp)
	}
	if d := got["RecordProcessor.processRecords.Time{Operation=ProcessTask,ShardId=shardId-0}"]; d.Unit != "Milliseconds" || d.Sum != 12 {
		t.Fatalf("processRecords.Time = %+v (all: %v)", d, got)
	}

	_, err := client("wrong").PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("app"), MetricData: []types.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1)}}})
	if err == nil {
		t.Fatal("a request signed with the wrong secret was accepted")
	}
	if r := cw.Rejected(); len(r) != 1 || !strings.Contains(r[0], "signature mismatch") {
		t.Fatalf("rejected = %v", r)
	}
}
