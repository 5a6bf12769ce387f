// Package retrieval owns reading a Kinesis stream, by polling or by
// enhanced fan-out: the shard lister (ListShards with pagination, filters and
// the KCL's LimitExceeded back-off), the per-shard Poller
// (GetShardIterator/GetRecords with prefetch, pacing, iterator recovery,
// throttling, shard end and KPL de-aggregation filtered to the shard's hash
// range), the enhanced fan-out consumer registration and per-shard
// Subscriber (SubscribeToShard with re-subscription, back-pressure and a
// ListShards/GetRecords fallback for shard ends the subscription does not
// signal) and the ≤-checkpoint filter applied before records reach a
// processor. It knows nothing of DynamoDB or child processes.
package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/ctxutil"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/shard"
)

// ListShardsAPI is the part of *kinesis.Client the Lister uses.
type ListShardsAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// ErrStreamNotFound is wrapped when Kinesis answers ResourceNotFound: the
// stream does not exist (or was deleted).
var ErrStreamNotFound = errors.New("retrieval: stream not found")

// ErrListShardsExhausted is wrapped when ListShards kept failing with
// LimitExceeded/ResourceInUse for MaxAttempts attempts.
var ErrListShardsExhausted = errors.New("retrieval: ListShards retries exhausted")

// ListerConfig tunes a Lister. Zero values take the Java defaults
// (properties.Defaults).
type ListerConfig struct {
	// Backoff after LimitExceededException (listShardsBackoffTimeInMillis).
	Backoff time.Duration
	// MaxAttempts bounds the attempts per page (maxListShardsRetryAttempts).
	MaxAttempts int
	// PageSize is ListShards MaxResults (default 0 = service default 1000).
	PageSize int32
}

// Lister lists a stream's shards. It is safe for concurrent use.
type Lister struct {
	client     ListShardsAPI
	streamName string
	streamARN  string
	cfg        ListerConfig
	log        *zap.Logger
}

// NewLister returns a Lister for the stream named streamName and/or
// streamARN. When both are given the name is used (kinesalite does not
// support ARN addressing); the ARN alone works on AWS and kinesis-local.
func NewLister(client ListShardsAPI, streamName, streamARN string, cfg ListerConfig, log *zap.Logger) *Lister {
	java := properties.Defaults()
	if cfg.Backoff <= 0 {
		cfg.Backoff = java.ListShardsBackoffTime
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = java.MaxListShardsRetryAttempts
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Lister{client: client, streamName: streamName, streamARN: streamARN, cfg: cfg, log: log}
}

// ListShards returns every shard of the stream that matches f (all shards
// when f.Type is empty), following NextToken pagination.
func (l *Lister) ListShards(ctx context.Context, f shard.Filter) ([]shard.Info, error) {
	first := &kinesis.ListShardsInput{}
	if l.streamName != "" {
		first.StreamName = aws.String(l.streamName)
	} else {
		first.StreamARN = aws.String(l.streamARN)
	}
	if l.cfg.PageSize > 0 {
		first.MaxResults = aws.Int32(l.cfg.PageSize)
	}
	if f.Type != "" {
		sf := &types.ShardFilter{Type: types.ShardFilterType(f.Type)}
		if f.Type == string(types.ShardFilterTypeAtTimestamp) || f.Type == string(types.ShardFilterTypeFromTimestamp) {
			sf.Timestamp = aws.Time(time.UnixMilli(f.TimestampMillis))
		}
		first.ShardFilter = sf
	}
	var out []shard.Info
	in := first
	restarted := false
	for {
		page, err := l.page(ctx, in)
		var expired *types.ExpiredNextTokenException
		if errors.As(err, &expired) && !restarted {
			// The token outlived its 300 s validity: start over once.
			l.log.Warn("ListShards NextToken expired; listing again from the start", zap.Error(err))
			restarted, in, out = true, first, nil
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, s := range page.Shards {
			out = append(out, convertShard(s))
		}
		if page.NextToken == nil || *page.NextToken == "" {
			return out, nil
		}
		// Follow-up pages carry only the token (and MaxResults): Kinesis
		// rejects StreamName/ShardFilter together with NextToken.
		in = &kinesis.ListShardsInput{NextToken: page.NextToken, MaxResults: first.MaxResults}
	}
}

// page performs one ListShards call with the KCL's retry rules.
func (l *Lister) page(ctx context.Context, in *kinesis.ListShardsInput) (*kinesis.ListShardsOutput, error) {
	var lastErr error
	for attempt := 1; attempt <= l.cfg.MaxAttempts; attempt++ {
		// An in-flight call survives cancellation briefly (see ctxutil.GraceContext).
		cctx, cancel := ctxutil.GraceContext(ctx, DefaultRequestTimeout, closeGrace)
		out, err := l.client.ListShards(cctx, in)
		cancel()
		if err == nil {
			return out, nil
		}
		var notFound *types.ResourceNotFoundException
		var limit *types.LimitExceededException
		var inUse *types.ResourceInUseException
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &notFound):
			return nil, fmt.Errorf("%w: %s: %w", ErrStreamNotFound, l.stream(), err)
		case errors.As(err, &limit), errors.As(err, &inUse):
			l.log.Info("ListShards: retrying after back-off", zap.String("stream", l.stream()),
				zap.Int("attempt", attempt), zap.Duration("backoff", l.cfg.Backoff), zap.Error(err))
			lastErr = err
		default:
			return nil, fmt.Errorf("retrieval: ListShards %s: %w", l.stream(), err)
		}
		if err := ctxutil.Sleep(ctx, l.cfg.Backoff); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: %s after %d attempts: %w", ErrListShardsExhausted, l.stream(), l.cfg.MaxAttempts, lastErr)
}

func (l *Lister) stream() string {
	if l.streamName != "" {
		return l.streamName
	}
	return l.streamARN
}

func convertShard(s types.Shard) shard.Info {
	info := shard.Info{
		ID:                    aws.ToString(s.ShardId),
		ParentShardID:         aws.ToString(s.ParentShardId),
		AdjacentParentShardID: aws.ToString(s.AdjacentParentShardId),
	}
	if s.HashKeyRange != nil {
		info.StartingHashKey = aws.ToString(s.HashKeyRange.StartingHashKey)
		info.EndingHashKey = aws.ToString(s.HashKeyRange.EndingHashKey)
	}
	if s.SequenceNumberRange != nil {
		info.StartingSequenceNumber = aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)
		info.EndingSequenceNumber = aws.ToString(s.SequenceNumberRange.EndingSequenceNumber)
	}
	return info
}
