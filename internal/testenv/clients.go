package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Region and static credentials every test client uses.
const (
	Region    = "us-east-1"
	AccessKey = "AKIDTESTTESTTEST"
	SecretKey = "secret"
)

// AWSConfig returns a minimal aws.Config with static credentials. It does not
// call config.LoadDefaultConfig, so AWS_CA_BUNDLE and profiles play no part.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		RetryMaxAttempts: 3,
	}
}

// Kinesis returns a Kinesis client for the emulator's plain endpoint.
func (e *Emulator) Kinesis() *kinesis.Client {
	return kinesis.NewFromConfig(AWSConfig(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(e.Endpoint) })
}

// DynamoDB returns a DynamoDB client for the emulator. Response CRC checks are
// off for DynamoDB Local, whose error responses carry no X-Amz-Crc32.
func (e *Emulator) DynamoDB() *dynamodb.Client {
	return dynamodb.NewFromConfig(AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(e.Endpoint)
		o.DisableValidateResponseChecksum = true
	})
}

// CreateStream creates a stream with n shards and waits until it is ACTIVE.
func CreateStream(ctx context.Context, c *kinesis.Client, name string, shards int32) error {
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return WaitStreamActive(ctx, c, name)
}

// WaitStreamActive polls DescribeStreamSummary until the stream is ACTIVE.
func WaitStreamActive(ctx context.Context, c *kinesis.Client, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stream %s not ACTIVE after 30s (last error: %v)", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CreateStreamT is CreateStream that fails the test on error.
func CreateStreamT(t testing.TB, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := CreateStream(ctx, c, name, shards); err != nil {
		t.Fatal(err)
	}
}
