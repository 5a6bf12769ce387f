// Package awsclient builds the Kinesis, DynamoDB and CloudWatch clients the
// daemon uses from a properties.Config: per-client region (override, else
// regionName, else the SDK default chain including EC2 instance metadata),
// endpoint overrides, and the KCL
// credentials-provider chains mapped to aws-sdk-go-v2 providers.
package awsclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	smithylogging "github.com/aws/smithy-go/logging"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/properties"
)

// Clients are the three service clients of one daemon.
type Clients struct {
	Kinesis    *kinesis.Client
	DynamoDB   *dynamodb.Client
	CloudWatch *cloudwatch.Client

	// KinesisConfig, DynamoDBConfig and CloudWatchConfig are the resolved
	// aws.Configs (region, credentials) the clients were built from, for
	// callers that need another client with the same settings.
	KinesisConfig, DynamoDBConfig, CloudWatchConfig aws.Config
}

// ErrNoRegion is returned when a client has no region: neither its override,
// regionName nor the SDK default chain (AWS_REGION, profile) gives one.
var ErrNoRegion = errors.New("no AWS region (none from the environment, the shared config or EC2 instance metadata): set regionName in the properties file or AWS_REGION in the environment")

// imdsRegionTimeout bounds the EC2 instance-metadata region lookup, which
// off EC2 only waits for a connection that never comes.
const imdsRegionTimeout = 2 * time.Second

// New builds the clients. It does not contact AWS: credentials are resolved
// on first use, trying the providers of each chain in order.
//
// AWS_CA_BUNDLE is honoured by config.LoadDefaultConfig's own HTTP client;
// New never replaces that client, which is what makes the variable work
// (with it set, LoadDefaultConfig rejects a custom HTTP client that is not
// an *awshttp.BuildableClient).
func New(ctx context.Context, cfg *properties.Config, log *zap.Logger) (*Clients, error) {
	if log == nil {
		log = zap.NewNop()
	}
	opts := []func(*config.LoadOptions) error{
		config.WithLogger(sdkLogger{log.Named("aws-sdk")}),
	}
	if cfg.RegionName != "" {
		opts = append(opts, config.WithRegion(cfg.RegionName))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS SDK configuration: %w", err)
	}
	if base.Region == "" && (cfg.KinesisRegion == "" || cfg.DynamoDBRegion == "" || cfg.CloudWatchRegion == "") {
		// The Java SDK's default region chain ends with instance metadata;
		// LoadDefaultConfig stops before it.
		base.Region = imdsRegion(ctx, base, log)
	}
	b := &builder{base: base, log: log, chains: map[string]aws.CredentialsProvider{}}

	kc, err := b.clientConfig("kinesis", cfg.KinesisRegion, cfg.CredentialsKinesis)
	if err != nil {
		return nil, err
	}
	dc, err := b.clientConfig("dynamodb", cfg.DynamoDBRegion, cfg.CredentialsDynamoDB)
	if err != nil {
		return nil, err
	}
	cc, err := b.clientConfig("cloudwatch", cfg.CloudWatchRegion, cfg.CredentialsCloudWatch)
	if err != nil {
		return nil, err
	}
	c := &Clients{KinesisConfig: kc, DynamoDBConfig: dc, CloudWatchConfig: cc}
	c.Kinesis = kinesis.NewFromConfig(kc, func(o *kinesis.Options) {
		if cfg.KinesisEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.KinesisEndpoint)
		}
	})
	c.DynamoDB = dynamodb.NewFromConfig(dc, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
			// DynamoDB Local sends no X-Amz-Crc32 on errors (the SDK then
			// warns and may drop the connection); real DynamoDB keeps the check.
			o.DisableValidateResponseChecksum = true
		}
	})
	c.CloudWatch = cloudwatch.NewFromConfig(cc, func(o *cloudwatch.Options) {
		if cfg.CloudWatchEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.CloudWatchEndpoint)
		}
	})
	log.Debug("AWS clients built",
		zap.String("kinesisRegion", kc.Region), zap.String("kinesisEndpoint", cfg.KinesisEndpoint),
		zap.String("dynamoDBRegion", dc.Region), zap.String("dynamoDBEndpoint", cfg.DynamoDBEndpoint),
		zap.String("cloudWatchRegion", cc.Region), zap.String("cloudWatchEndpoint", cfg.CloudWatchEndpoint))
	return c, nil
}

// imdsRegion asks EC2 instance metadata for the region ("" when there is
// none, e.g. off EC2 or with AWS_EC2_METADATA_DISABLED=true).
func imdsRegion(ctx context.Context, base aws.Config, log *zap.Logger) string {
	ctx, cancel := context.WithTimeout(ctx, imdsRegionTimeout)
	defer cancel()
	out, err := imds.NewFromConfig(base).GetRegion(ctx, nil)
	if err != nil || out.Region == "" {
		log.Debug("no region from EC2 instance metadata", zap.Error(err))
		return ""
	}
	log.Info("AWS region from EC2 instance metadata", zap.String("region", out.Region))
	return out.Region
}

// builder shares the base SDK config and identical credential chains
// between the three clients.
type builder struct {
	base   aws.Config
	log    *zap.Logger
	chains map[string]aws.CredentialsProvider
}

func (b *builder) clientConfig(service, regionOverride string, chain []properties.CredentialsProvider) (aws.Config, error) {
	c := b.base.Copy()
	if regionOverride != "" {
		c.Region = regionOverride
	}
	if c.Region == "" {
		return aws.Config{}, fmt.Errorf("%s client: %w", service, ErrNoRegion)
	}
	p, err := b.credentials(chain)
	if err != nil {
		return aws.Config{}, fmt.Errorf("%s client credentials: %w", service, err)
	}
	c.Credentials = p
	return c, nil
}

// credentials returns the (cached) provider for a chain.
func (b *builder) credentials(chain []properties.CredentialsProvider) (aws.CredentialsProvider, error) {
	if len(chain) == 0 {
		return nil, errors.New("no credential providers were specified")
	}
	keyParts := make([]string, len(chain))
	for i, p := range chain {
		keyParts[i] = p.Name + "|" + strings.Join(p.Args, "|")
	}
	key := strings.Join(keyParts, ",")
	if p, ok := b.chains[key]; ok {
		return p, nil
	}
	if len(chain) == 1 && chain[0].Name == properties.CredAnonymous {
		// The signer recognises this type and sends unsigned requests.
		b.chains[key] = aws.AnonymousCredentials{}
		return b.chains[key], nil
	}
	ch := &chainProvider{}
	for _, p := range chain {
		prov, err := b.provider(p)
		if err != nil {
			return nil, err
		}
		ch.names = append(ch.names, p.Name)
		ch.providers = append(ch.providers, prov)
	}
	cached := aws.NewCredentialsCache(ch)
	b.chains[key] = cached
	return cached, nil
}

// sdkLogger forwards the SDK's own log lines (retries, checksum warnings) to zap.
type sdkLogger struct{ log *zap.Logger }

func (l sdkLogger) Logf(c smithylogging.Classification, format string, v ...interface{}) {
	msg := fmt.Sprintf(format, v...)
	if c == smithylogging.Warn {
		l.log.Warn(msg)
		return
	}
	l.log.Debug(msg)
}
