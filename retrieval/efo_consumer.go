package retrieval

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/properties"
)

// ConsumerAPI is the part of *kinesis.Client that RegisterConsumer uses.
type ConsumerAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
}

// ErrConsumerNotActive is wrapped when a registered consumer did not become
// ACTIVE within the allowed DescribeStreamConsumer polls.
var ErrConsumerNotActive = errors.New("retrieval: stream consumer not ACTIVE")

// ConsumerConfig selects the enhanced fan-out consumer (fanoutConfig.*).
// Zero values take the Java defaults (properties.Defaults).
type ConsumerConfig struct {
	// StreamName and/or StreamARN: without an ARN, DescribeStreamSummary
	// resolves it from the name.
	StreamName string
	StreamARN  string
	// ConsumerName is registered when missing (fanoutConfig.consumerName,
	// default applicationName).
	ConsumerName string
	// ConsumerARN, when set, is used as is: no registration at all.
	ConsumerARN string
	// Retries and the back-off between them.
	MaxDescribeStreamSummaryRetries  int
	MaxDescribeStreamConsumerRetries int
	RegisterStreamConsumerRetries    int
	RetryBackoff                     time.Duration
}

func (c *ConsumerConfig) setDefaults() {
	java := properties.Defaults().Fanout
	if c.MaxDescribeStreamSummaryRetries <= 0 {
		c.MaxDescribeStreamSummaryRetries = java.MaxDescribeStreamSummaryRetries
	}
	if c.MaxDescribeStreamConsumerRetries <= 0 {
		c.MaxDescribeStreamConsumerRetries = java.MaxDescribeStreamConsumerRetries
	}
	if c.RegisterStreamConsumerRetries <= 0 {
		c.RegisterStreamConsumerRetries = java.RegisterStreamConsumerRetries
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = java.RetryBackoff
	}
}

// RegisterConsumer returns the ARN of the stream's enhanced fan-out consumer
// as the Java KCL's FanOutConsumerRegistration does: a configured ARN is
// returned unchecked; otherwise the consumer is described by name,
// registered when it does not exist, and polled until ACTIVE. The consumer is
// never deregistered.
func RegisterConsumer(ctx context.Context, api ConsumerAPI, cfg ConsumerConfig, log *zap.Logger) (string, error) {
	cfg.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.ConsumerARN != "" {
		return cfg.ConsumerARN, nil
	}
	if cfg.ConsumerName == "" {
		return "", errors.New("retrieval: no fan-out consumer name or ARN")
	}
	r := registrar{api: api, cfg: cfg, log: log}
	streamARN := cfg.StreamARN
	if streamARN == "" {
		var err error
		if streamARN, err = r.streamARN(ctx); err != nil {
			return "", err
		}
	}
	for registered := false; ; {
		c, err := r.describe(ctx, streamARN)
		switch {
		case isNotFound(err) && !registered:
			if err := r.register(ctx, streamARN); err != nil {
				return "", err
			}
			registered = true
			continue
		case isNotFound(err):
			// Registered a moment ago and not visible yet: poll as Java
			// does after RegisterStreamConsumer.
			return r.waitActive(ctx, streamARN)
		case err != nil:
			return "", err
		}
		if c.ConsumerStatus == types.ConsumerStatusActive {
			log.Info("using enhanced fan-out consumer", zap.String("consumerName", cfg.ConsumerName),
				zap.String("consumerARN", aws.ToString(c.ConsumerARN)))
			return aws.ToString(c.ConsumerARN), nil
		}
		return r.waitActive(ctx, streamARN)
	}
}

type registrar struct {
	api ConsumerAPI
	cfg ConsumerConfig
	log *zap.Logger
}

// retry calls f up to attempts times while it fails with LimitExceeded,
// sleeping RetryBackoff plus up to 100 ms of jitter in between.
func (r registrar) retry(ctx context.Context, what string, attempts int, f func(context.Context) error) error {
	var err error
	for i := 1; i <= attempts; i++ {
		cctx, cancel := ctxutil.GraceContext(ctx, DefaultRequestTimeout, closeGrace)
		err = f(cctx)
		cancel()
		var limit *types.LimitExceededException
		if err == nil || !errors.As(err, &limit) || ctx.Err() != nil {
			break
		}
		r.log.Info(what+" limit exceeded; retrying", zap.Int("attempt", i), zap.Error(err))
		if i < attempts {
			if serr := ctxutil.Sleep(ctx, r.cfg.RetryBackoff+time.Duration(rand.Int64N(int64(100*time.Millisecond)))); serr != nil {
				return serr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("retrieval: %s: %w", what, err)
	}
	return nil
}

func (r registrar) streamARN(ctx context.Context) (string, error) {
	var arn string
	err := r.retry(ctx, "DescribeStreamSummary "+r.cfg.StreamName, r.cfg.MaxDescribeStreamSummaryRetries, func(ctx context.Context) error {
		out, err := r.api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(r.cfg.StreamName)})
		if err == nil {
			arn = aws.ToString(out.StreamDescriptionSummary.StreamARN)
		}
		return err
	})
	if err == nil && arn == "" {
		err = fmt.Errorf("retrieval: DescribeStreamSummary %s returned no StreamARN", r.cfg.StreamName)
	}
	return arn, err
}

func (r registrar) describe(ctx context.Context, streamARN string) (*types.ConsumerDescription, error) {
	var c *types.ConsumerDescription
	err := r.retry(ctx, "DescribeStreamConsumer "+r.cfg.ConsumerName, r.cfg.MaxDescribeStreamConsumerRetries, func(ctx context.Context) error {
		out, err := r.api.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{
			StreamARN: aws.String(streamARN), ConsumerName: aws.String(r.cfg.ConsumerName)})
		if err == nil {
			if out.ConsumerDescription == nil {
				return errors.New("no ConsumerDescription in the response")
			}
			c = out.ConsumerDescription
		}
		return err
	})
	return c, err
}

func (r registrar) register(ctx context.Context, streamARN string) error {
	r.log.Info("registering enhanced fan-out consumer", zap.String("consumerName", r.cfg.ConsumerName), zap.String("streamARN", streamARN))
	err := r.retry(ctx, "RegisterStreamConsumer "+r.cfg.ConsumerName, r.cfg.RegisterStreamConsumerRetries, func(ctx context.Context) error {
		_, err := r.api.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
			StreamARN: aws.String(streamARN), ConsumerName: aws.String(r.cfg.ConsumerName)})
		return err
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) { // registered concurrently by another worker: describe again
		return nil
	}
	return err
}

// waitActive polls DescribeStreamConsumer until the consumer is ACTIVE.
func (r registrar) waitActive(ctx context.Context, streamARN string) (string, error) {
	var last types.ConsumerStatus
	for i := 0; i < r.cfg.MaxDescribeStreamConsumerRetries; i++ {
		if err := ctxutil.Sleep(ctx, r.cfg.RetryBackoff); err != nil {
			return "", err
		}
		c, err := r.describe(ctx, streamARN)
		if isNotFound(err) {
			last = "not found"
			continue
		}
		if err != nil {
			return "", err
		}
		if last = c.ConsumerStatus; last == types.ConsumerStatusActive {
			r.log.Info("enhanced fan-out consumer is ACTIVE", zap.String("consumerName", r.cfg.ConsumerName),
				zap.String("consumerARN", aws.ToString(c.ConsumerARN)))
			return aws.ToString(c.ConsumerARN), nil
		}
	}
	return "", fmt.Errorf("%w: %s is %s after %d checks", ErrConsumerNotActive, r.cfg.ConsumerName, last, r.cfg.MaxDescribeStreamConsumerRetries)
}
