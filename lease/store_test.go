package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
)

func TestClassifyAndRetry(t *testing.T) {
	throttle := &types.ProvisionedThroughputExceededException{Message: new(string)}
	ccf := &types.ConditionalCheckFailedException{Message: new(string)}
	internal := &smithy.GenericAPIError{Code: "InternalServerError"}
	other := &smithy.GenericAPIError{Code: "ValidationException"}
	tests := []struct {
		name      string
		errs      []error // returned by successive attempts; nil = success
		wantCalls int
		wantIs    error // nil = success expected
		wantOther bool  // an error that is none of the sentinels
	}{
		{"throttled then ok", []error{throttle, throttle, nil}, 3, nil, false},
		{"transient then ok", []error{internal, nil}, 2, nil, false},
		{"throttled to exhaustion", []error{throttle, throttle, throttle, throttle, throttle}, 4, ErrThrottled, false},
		{"condition failed: no retry", []error{ccf, nil}, 1, ErrConditionFailed, false},
		{"validation: no retry", []error{other, nil}, 1, nil, true},
		{"missing table", []error{&types.ResourceNotFoundException{Message: new(string)}}, 1, ErrTableNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &DynamoStore{log: zap.NewNop(), maxAttempts: 4, baseBackoff: time.Millisecond}
			calls := 0
			err := s.do(context.Background(), "op", func(context.Context) error {
				e := tt.errs[calls]
				calls++
				return e
			})
			if calls != tt.wantCalls {
				t.Fatalf("calls = %d, want %d (err %v)", calls, tt.wantCalls, err)
			}
			switch {
			case tt.wantOther:
				if err == nil || errors.Is(err, ErrThrottled) || errors.Is(err, ErrConditionFailed) {
					t.Fatalf("err = %v", err)
				}
			case tt.wantIs == nil:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			case !errors.Is(err, tt.wantIs):
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
		})
	}
	t.Run("context cancelled during back-off", func(t *testing.T) {
		s := &DynamoStore{log: zap.NewNop(), maxAttempts: 4, baseBackoff: time.Hour}
		ctx, cancel := context.WithCancel(context.Background())
		err := s.do(ctx, "op", func(context.Context) error { cancel(); return throttle })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrThrottled) {
			t.Fatalf("err = %v", err)
		}
	})
}
