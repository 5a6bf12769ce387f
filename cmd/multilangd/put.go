package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/multilangd/multilangd/awsclient"
	"github.com/multilangd/multilangd/internal/logging"
	"github.com/multilangd/multilangd/producer"
	"github.com/multilangd/multilangd/properties"
)

// putFlags are the `put` command's options.
type putFlags struct {
	file         string
	endpoint     string
	stream       string
	streamARN    string
	region       string
	rate         float64
	count        int
	aggregate    bool
	aggEvery     int
	perAggregate int
	keys         int
	size         int
	createShards int
}

// newPutCmd returns the `put` subcommand: a producer for demos and tests.
func newPutCmd() *cobra.Command {
	var f putFlags
	cmd := &cobra.Command{
		Use:   "put [-p FILE] [--endpoint URL] [--stream NAME] [flags]",
		Short: "Put generated records into a stream (demos and tests), optionally KPL-aggregated",
		Long: `put writes numbered word records ("00000042 charlie") into a Kinesis stream with
PutRecords at --rate records per second until --count records were put or
Ctrl-C. With --aggregate every Kinesis record is a KPL aggregate of
--records-per-aggregate user records; --aggregate-every N makes only every N-th
one an aggregate. All sub-records of an aggregate share its explicit hash key,
so the KCL never drops them, even across a reshard.

The stream, endpoint, region and credentials come from -p FILE (the daemon's
properties: streamName/streamArn, kinesisEndpoint, regionName, the credentials
provider), or from --stream/--endpoint/--region and the SDK's default chain;
flags win over the file. Against an emulator (--endpoint) without credentials
in the environment, dummy static credentials are used.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runPut(ctx, cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "properties-file", "p", "", "KCL .properties file giving stream, endpoint, region and credentials")
	fl.StringVar(&f.endpoint, "endpoint", "", "Kinesis endpoint URL, e.g. http://127.0.0.1:4567 (overrides kinesisEndpoint)")
	fl.StringVar(&f.stream, "stream", "", "stream name (overrides streamName)")
	fl.StringVar(&f.streamARN, "stream-arn", "", "stream ARN (used when no stream name is known)")
	fl.StringVar(&f.region, "region", "", "AWS region (default: regionName, AWS_REGION, or us-east-1 with --endpoint)")
	fl.Float64Var(&f.rate, "rate", 100, "user records per second (0 = as fast as possible)")
	fl.IntVar(&f.count, "count", 0, "user records to put (0 = until interrupted)")
	fl.BoolVar(&f.aggregate, "aggregate", false, "put every Kinesis record as a KPL aggregate")
	fl.IntVar(&f.aggEvery, "aggregate-every", 0, "make every N-th Kinesis record a KPL aggregate (0 = none unless --aggregate)")
	fl.IntVar(&f.perAggregate, "records-per-aggregate", 10, "user records per KPL aggregate")
	fl.IntVar(&f.keys, "partition-keys", 16, "number of distinct partition keys")
	fl.IntVar(&f.size, "size", 0, "pad each payload with spaces to this many bytes (0 = no padding)")
	fl.IntVar(&f.createShards, "create-shards", 0, "create the stream with this many shards if it does not exist")
	return cmd
}

func runPut(ctx context.Context, cmd *cobra.Command, f putFlags) error {
	awsCfg, endpoint, stream, streamARN, err := putTarget(ctx, cmd, f)
	if err != nil {
		return err
	}
	if stream == "" && streamARN == "" {
		return errors.New("put: no stream: give --stream or -p FILE with streamName")
	}
	// A frozen client can close its idle connections when we are done.
	hc := awsCfg.HTTPClient
	if bc, ok := hc.(*awshttp.BuildableClient); ok {
		hc = bc.Freeze()
	}
	if c, ok := hc.(interface{ CloseIdleConnections() }); ok {
		defer c.CloseIdleConnections()
	}
	client := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		o.HTTPClient = hc
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	if f.createShards > 0 {
		if err := ensureStream(ctx, client, stream, int32(f.createShards), cmd); err != nil { //nolint:gosec // flag value
			return err
		}
	}
	payload := producer.Words
	if f.size > 0 {
		payload = func(i int) []byte {
			b := producer.Words(i)
			if len(b) < f.size {
				b = append(b, bytes.Repeat([]byte{' '}, f.size-len(b))...)
			}
			return b
		}
	}
	err = producer.Run(ctx, client, producer.Options{
		Stream: stream, StreamARN: streamARN, Count: f.count, Rate: f.rate, PartitionKeys: f.keys,
		Aggregate: f.aggregate, AggregateEvery: f.aggEvery, RecordsPerAggregate: f.perAggregate,
		Payload: payload, Progress: cmd.OutOrStdout(),
	})
	if err != nil && ctx.Err() != nil && f.count > 0 {
		return fmt.Errorf("put: interrupted before %d records: %w", f.count, err)
	}
	return err
}

// putTarget resolves the AWS configuration, endpoint and stream from the
// properties file (if any) and the flags.
func putTarget(ctx context.Context, cmd *cobra.Command, f putFlags) (cfg aws.Config, endpoint, stream, streamARN string, err error) {
	endpoint, stream, streamARN = f.endpoint, f.stream, f.streamARN
	if f.file != "" {
		props, err := properties.Load(f.file)
		if err != nil {
			return cfg, "", "", "", err
		}
		if f.region != "" {
			props.KinesisRegion = f.region
		}
		log, err := logging.NewTo("warn", logging.FormatConsole, writeSyncer{cmd.ErrOrStderr()})
		if err != nil {
			return cfg, "", "", "", err
		}
		clients, err := awsclient.New(ctx, props, log)
		if err != nil {
			return cfg, "", "", "", err
		}
		if endpoint == "" {
			endpoint = props.KinesisEndpoint
		}
		if stream == "" && streamARN == "" {
			stream, streamARN = props.StreamName, props.StreamARN
		}
		return clients.KinesisConfig, endpoint, stream, streamARN, nil
	}
	var opts []func(*config.LoadOptions) error
	switch {
	case f.region != "":
		opts = append(opts, config.WithRegion(f.region))
	case endpoint != "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "":
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	cfg, err = config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, "", "", "", fmt.Errorf("put: AWS configuration: %w", err)
	}
	if endpoint != "" {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, cerr := cfg.Credentials.Retrieve(cctx)
		cancel()
		if cerr != nil || cfg.Credentials == nil {
			// Emulators accept any signature.
			cfg.Credentials = credentials.NewStaticCredentialsProvider("multilangd", "put", "")
		}
	}
	return cfg, endpoint, stream, streamARN, nil
}

// ensureStream creates the stream with shards shards when it does not exist
// and waits until it is ACTIVE.
func ensureStream(ctx context.Context, c *kinesis.Client, stream string, shards int32, cmd *cobra.Command) error {
	if stream == "" {
		return errors.New("put: --create-shards needs a stream name")
	}
	_, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)}); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) { // someone else created it meanwhile
				return fmt.Errorf("put: create stream %s: %w", stream, err)
			}
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "created stream %s with %d shards\n", stream, shards)
		}
	case err != nil:
		return fmt.Errorf("put: describe stream %s: %w", stream, err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("put: stream %s not ACTIVE after 2 minutes (last error: %v)", stream, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
