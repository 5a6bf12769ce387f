package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/awsclient"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/subprocess"
)

// PreflightError is a start-up check that failed: the daemon exits 1 with it
// instead of starting shard consumers that would all fail the same way.
type PreflightError struct {
	// Check names what was checked ("executableName", "credentials", "stream").
	Check string
	Err   error
}

func (e *PreflightError) Error() string { return e.Check + ": " + e.Err.Error() }
func (e *PreflightError) Unwrap() error { return e.Err }

// checkExecutable resolves executableName the way each child is started
// (subprocess.ResolveCommand: relative to the working directory, or through
// PATH) and reports the path it tried when that fails. Java's
// MultiLangDaemon only finds out when the first ProcessBuilder.start fails,
// per shard, forever.
func checkExecutable(cfg *properties.Config) error {
	_, _, err := subprocess.ResolveCommand(cfg.ExecutableName, "")
	if err == nil {
		return nil
	}
	wd, _ := os.Getwd()
	return &PreflightError{Check: "executableName", Err: fmt.Errorf("%q does not resolve to an executable file (working directory %s): %w",
		cfg.ExecutableName, wd, err)}
}

// preflightTimeout bounds the start-up AWS checks.
const preflightTimeout = 30 * time.Second

// checkAWS makes sure every client's credentials can sign and that the
// stream exists. Errors that are certain (no credentials, unknown stream,
// rejected signature) fail the start; anything else (network, throttling,
// no permission for DescribeStreamSummary) is logged and the daemon starts,
// where the normal per-call retries apply.
func checkAWS(ctx context.Context, cfg *properties.Config, c *awsclient.Clients, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	for _, svc := range []struct {
		name string
		cfg  aws.Config
	}{{"Kinesis", c.KinesisConfig}, {"DynamoDB", c.DynamoDBConfig}, {"CloudWatch", c.CloudWatchConfig}} {
		if svc.name == "CloudWatch" && !cloudWatchUsed(cfg) {
			continue
		}
		if err := canSign(ctx, svc.cfg); err != nil {
			return &PreflightError{Check: "credentials", Err: fmt.Errorf("%s client: %w", svc.name, err)}
		}
	}
	return checkStream(ctx, cfg, c.Kinesis, log)
}

// cloudWatchUsed reports whether the daemon will publish to CloudWatch.
func cloudWatchUsed(cfg *properties.Config) bool { return cfg.MetricsLevel != "NONE" }

// canSign retrieves the client's credentials once (the providers of the
// KCL chain in order). Anonymous credentials sign nothing and need nothing.
func canSign(ctx context.Context, c aws.Config) error {
	if c.Credentials == nil {
		return errors.New("no credentials provider")
	}
	if _, ok := c.Credentials.(aws.AnonymousCredentials); ok {
		return nil
	}
	_, err := c.Credentials.Retrieve(ctx)
	return err
}

// checkStream calls DescribeStreamSummary once. A multi-stream
// application resolves each stream itself and keeps running without the
// streams it cannot reach yet (docs/multistream.md), so nothing is checked.
func checkStream(ctx context.Context, cfg *properties.Config, k *kinesis.Client, log *zap.Logger) error {
	if cfg.MultiStream() {
		return nil
	}
	in := &kinesis.DescribeStreamSummaryInput{}
	name := cfg.StreamName
	if cfg.StreamARN != "" {
		in.StreamARN, name = aws.String(cfg.StreamARN), cfg.StreamARN
	} else {
		in.StreamName = aws.String(cfg.StreamName)
	}
	_, err := k.DescribeStreamSummary(ctx, in)
	if err == nil {
		return nil
	}
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return &PreflightError{Check: "stream", Err: fmt.Errorf("stream %q does not exist (Kinesis region %s): %w", name, k.Options().Region, err)}
	}
	var api smithy.APIError
	if errors.As(err, &api) && signatureRejected(api.ErrorCode()) {
		return &PreflightError{Check: "credentials", Err: fmt.Errorf("the request signature for stream %q was rejected by Kinesis: %w", name, err)}
	}
	log.Warn("start-up check of the stream failed; starting anyway (per-call retries apply)",
		zap.String("stream", name), zap.Error(err))
	return nil
}

// signatureRejected lists the error codes AWS returns for credentials that
// cannot sign (unknown key, wrong secret, expired or missing token).
func signatureRejected(code string) bool {
	switch code {
	case "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
		"MissingAuthenticationToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch":
		return true
	}
	return false
}
