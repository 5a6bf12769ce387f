package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestStartAllEmulators starts each emulator, makes one call, stops it and
// checks that no process is left.
func TestStartAllEmulators(t *testing.T) {
	SkipIfShort(t)
	cases := []struct {
		kind Kind
		call func(ctx context.Context, e *Emulator) error
	}{
		{Kinesalite, func(ctx context.Context, e *Emulator) error {
			_, err := e.Kinesis().ListStreams(ctx, &kinesis.ListStreamsInput{})
			return err
		}},
		{KinesisLocal, func(ctx context.Context, e *Emulator) error {
			_, err := e.Kinesis().ListStreams(ctx, &kinesis.ListStreamsInput{})
			return err
		}},
		{Dynalite, func(ctx context.Context, e *Emulator) error {
			_, err := e.DynamoDB().ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		}},
		{DynamoDBLocal, func(ctx context.Context, e *Emulator) error {
			_, err := e.DynamoDB().ListTables(ctx, &dynamodb.ListTablesInput{})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			e, err := Start(ctx, tc.kind, StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pid := e.PID()
			if err := tc.call(ctx, e); err != nil {
				_ = e.Stop()
				t.Fatalf("%s call: %v", tc.kind, err)
			}
			if err := e.Stop(); err != nil {
				t.Fatal(err)
			}
			if ProcessAlive(pid) {
				t.Fatalf("%s pid %d still alive after Stop", tc.kind, pid)
			}
		})
	}
}
