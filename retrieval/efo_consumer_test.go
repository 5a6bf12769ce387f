package retrieval

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"
)

// fakeConsumers scripts DescribeStreamConsumer answers and records calls.
type fakeConsumers struct {
	mu       sync.Mutex
	calls    []string
	describe func(n int) (*types.ConsumerDescription, error)
	register func(n int) error
	nd, nr   int
}

func (f *fakeConsumers) DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "summary")
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{StreamARN: aws.String("arn:stream")}}, nil
}

func (f *fakeConsumers) DescribeStreamConsumer(_ context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "describe")
	if aws.ToString(in.StreamARN) != "arn:stream" || aws.ToString(in.ConsumerName) != "app" {
		return nil, errors.New("bad describe input")
	}
	c, err := f.describe(f.nd)
	f.nd++
	if err != nil {
		return nil, err
	}
	return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: c}, nil
}

func (f *fakeConsumers) RegisterStreamConsumer(context.Context, *kinesis.RegisterStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "register")
	err := f.register(f.nr)
	f.nr++
	return &kinesis.RegisterStreamConsumerOutput{}, err
}

func consumer(status types.ConsumerStatus) *types.ConsumerDescription {
	return &types.ConsumerDescription{ConsumerARN: aws.String("arn:consumer"), ConsumerStatus: status}
}

func TestRegisterConsumer(t *testing.T) {
	notFound := &types.ResourceNotFoundException{Message: aws.String("no consumer")}
	limit := &types.LimitExceededException{Message: aws.String("slow down")}
	cases := []struct {
		name      string
		describe  func(n int) (*types.ConsumerDescription, error)
		register  func(n int) error
		wantCalls []string
		wantErr   error
	}{
		{
			name:      "existing ACTIVE consumer",
			describe:  func(int) (*types.ConsumerDescription, error) { return consumer(types.ConsumerStatusActive), nil },
			wantCalls: []string{"summary", "describe"},
		},
		{
			name: "new consumer: register, then poll until ACTIVE",
			describe: func(n int) (*types.ConsumerDescription, error) {
				switch n {
				case 0:
					return nil, notFound
				case 1, 2:
					return consumer(types.ConsumerStatusCreating), nil
				}
				return consumer(types.ConsumerStatusActive), nil
			},
			register:  func(int) error { return nil },
			wantCalls: []string{"summary", "describe", "register", "describe", "describe", "describe"},
		},
		{
			name: "just registered, not yet visible (ResourceNotFound): polled like CREATING",
			describe: func(n int) (*types.ConsumerDescription, error) {
				if n < 2 {
					return nil, notFound
				}
				return consumer(types.ConsumerStatusActive), nil
			},
			register:  func(int) error { return nil },
			wantCalls: []string{"summary", "describe", "register", "describe", "describe"},
		},
		{
			name: "LimitExceeded is retried",
			describe: func(n int) (*types.ConsumerDescription, error) {
				switch n {
				case 0:
					return nil, limit
				case 1:
					return nil, notFound
				}
				return consumer(types.ConsumerStatusActive), nil
			},
			register: func(n int) error {
				if n == 0 {
					return limit
				}
				return nil
			},
			wantCalls: []string{"summary", "describe", "describe", "register", "register", "describe"},
		},
		{
			name: "registered concurrently (ResourceInUse): described again",
			describe: func(n int) (*types.ConsumerDescription, error) {
				if n == 0 {
					return nil, notFound
				}
				return consumer(types.ConsumerStatusActive), nil
			},
			register:  func(int) error { return &types.ResourceInUseException{Message: aws.String("exists")} },
			wantCalls: []string{"summary", "describe", "register", "describe"},
		},
		{
			name:      "never ACTIVE",
			describe:  func(int) (*types.ConsumerDescription, error) { return consumer(types.ConsumerStatusCreating), nil },
			wantCalls: []string{"summary", "describe", "describe", "describe", "describe"},
			wantErr:   ErrConsumerNotActive,
		},
		{
			name:      "other errors are returned",
			describe:  func(int) (*types.ConsumerDescription, error) { return nil, errFailing },
			wantCalls: []string{"summary", "describe"},
			wantErr:   errFailing,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeConsumers{describe: tc.describe, register: tc.register}
			arn, err := RegisterConsumer(context.Background(), f, ConsumerConfig{StreamName: "s", ConsumerName: "app",
				MaxDescribeStreamConsumerRetries: 3, RetryBackoff: time.Millisecond}, zaptest.NewLogger(t))
			if !errors.Is(err, tc.wantErr) || (err == nil && arn != "arn:consumer") {
				t.Errorf("RegisterConsumer = %q, %v; want arn:consumer, %v", arn, err, tc.wantErr)
			}
			if !slices.Equal(f.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", f.calls, tc.wantCalls)
			}
		})
	}
}
