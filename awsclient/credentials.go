package awsclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/multilangd/multilangd/properties"
)

// ErrNoCredentials is wrapped by every error of a provider that has nothing
// to offer (unset environment variables, no JVM system properties, ...), so a
// chain moves on to its next entry.
var ErrNoCredentials = errors.New("no credentials from this provider")

// chainProvider returns the credentials of the first provider that yields
// some, like the Java SDK's AwsCredentialsProviderChain.
type chainProvider struct {
	names     []string
	providers []aws.CredentialsProvider
}

func (c *chainProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	var errs []error
	for i, p := range c.providers {
		creds, err := p.Retrieve(ctx)
		if err == nil && creds.HasKeys() {
			return creds, nil
		}
		if err == nil {
			err = ErrNoCredentials
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.names[i], err))
	}
	return aws.Credentials{}, fmt.Errorf("no provider in the credentials chain %s yielded credentials: %w",
		strings.Join(c.names, ", "), errors.Join(errs...))
}

// failing is a provider that always reports why it has nothing.
type failing struct{ err error }

func (f failing) Retrieve(context.Context) (aws.Credentials, error) { return aws.Credentials{}, f.err }

// envProvider reads the environment on each call, like the Java SDK's
// EnvironmentVariableCredentialsProvider.
type envProvider struct{}

func (envProvider) Retrieve(context.Context) (aws.Credentials, error) {
	id := firstEnv("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	secret := firstEnv("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	if id == "" || secret == "" {
		return aws.Credentials{}, fmt.Errorf("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set: %w", ErrNoCredentials)
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
		Source: properties.CredEnvironment}, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// profileProvider loads a shared-config profile on first use, so that a
// missing profile only fails its own chain entry.
type profileProvider struct {
	profile string
	mu      sync.Mutex
	inner   aws.CredentialsProvider
}

func (p *profileProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	inner := p.inner
	p.mu.Unlock()
	if inner == nil {
		profile := p.profile
		if profile == "" {
			profile = firstEnv("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
		}
		if profile == "" {
			profile = "default"
		}
		c, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigProfile(profile))
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("profile %q: %w", profile, err)
		}
		if c.Credentials == nil || !profileHasCredentials(c.ConfigSources) {
			// Without a source of its own the SDK's profile chain falls back
			// to container or instance-role credentials; Java's
			// ProfileCredentialsProvider fails, so the KCL chain moves on.
			return aws.Credentials{}, fmt.Errorf("profile %q has no credentials: %w", profile, ErrNoCredentials)
		}
		p.mu.Lock()
		p.inner = c.Credentials
		inner = c.Credentials
		p.mu.Unlock()
	}
	return inner.Retrieve(ctx)
}

// profileHasCredentials reports whether the loaded shared-config profile
// names a credentials source itself: keys, a source profile, a named
// credential source, a web identity token file, SSO, a login session or a
// credential process.
func profileHasCredentials(sources []interface{}) bool {
	for _, src := range sources {
		sc, ok := src.(config.SharedConfig)
		if !ok {
			continue
		}
		return sc.Credentials.HasKeys() || sc.Source != nil || sc.CredentialSource != "" ||
			sc.WebIdentityTokenFile != "" || sc.SSOSession != nil || sc.SSOAccountID != "" ||
			sc.SSOStartURL != "" || sc.SSORoleName != "" || sc.LoginSession != "" || sc.CredentialProcess != ""
	}
	return false
}

// provider maps one KCL chain entry to an SDK provider.
func (b *builder) provider(p properties.CredentialsProvider) (aws.CredentialsProvider, error) {
	switch p.Name {
	case properties.CredDefault:
		if b.base.Credentials == nil {
			return failing{fmt.Errorf("the SDK default chain found no source: %w", ErrNoCredentials)}, nil
		}
		return b.base.Credentials, nil
	case properties.CredEnvironment:
		return envProvider{}, nil
	case properties.CredSystemProperty:
		return failing{fmt.Errorf("multilangd has no JVM system properties: %w", ErrNoCredentials)}, nil
	case properties.CredProfile:
		name := ""
		if len(p.Args) > 0 {
			name = p.Args[0]
		}
		return &profileProvider{profile: name}, nil
	case properties.CredInstanceProfile:
		return ec2rolecreds.New(), nil
	case properties.CredContainer:
		return containerProvider(), nil
	case properties.CredWebIdentity:
		return b.webIdentityProvider(), nil
	case properties.CredStsAssumeRole:
		return b.assumeRoleProvider(p)
	case properties.CredAnonymous:
		return nil, errors.New("AnonymousCredentialsProvider cannot be combined with other providers")
	}
	return nil, fmt.Errorf("unsupported credentials provider %q", p.Name)
}

// containerProvider follows the ECS/EKS container credentials variables.
func containerProvider() aws.CredentialsProvider {
	url := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if rel := os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); url == "" && rel != "" {
		url = "http://169.254.170.2" + rel
	}
	if url == "" {
		return failing{fmt.Errorf("neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set: %w", ErrNoCredentials)}
	}
	return endpointcreds.New(url, func(o *endpointcreds.Options) {
		if f := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); f != "" {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(f)
				return strings.TrimSpace(string(b)), err
			})
		} else {
			o.AuthorizationToken = os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
		}
	})
}

// webIdentityProvider follows AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE.
func (b *builder) webIdentityProvider() aws.CredentialsProvider {
	role, file := os.Getenv("AWS_ROLE_ARN"), os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	if role == "" || file == "" {
		return failing{fmt.Errorf("AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are not both set: %w", ErrNoCredentials)}
	}
	c := b.base.Copy()
	c.Credentials = aws.AnonymousCredentials{} // AssumeRoleWithWebIdentity is unsigned
	return stscreds.NewWebIdentityRoleProvider(sts.NewFromConfig(c), role, stscreds.IdentityTokenFile(file),
		func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = os.Getenv("AWS_ROLE_SESSION_NAME")
		})
}

// assumeRoleProvider mirrors KclStsAssumeRoleCredentialsProvider: the STS
// client uses the SDK default credentials, endpointRegion (or the signing
// region of endpoint=url^region, or the default region) and an optional
// endpoint override.
func (b *builder) assumeRoleProvider(p properties.CredentialsProvider) (aws.CredentialsProvider, error) {
	s, ok := p.STS()
	if !ok {
		return nil, fmt.Errorf("%s needs a role ARN and a session name", properties.CredStsAssumeRole)
	}
	c := b.base.Copy()
	if s.EndpointRegion != "" {
		c.Region = s.EndpointRegion
	}
	if s.SigningRegion != "" {
		c.Region = s.SigningRegion
	}
	client := sts.NewFromConfig(c, func(o *sts.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
	})
	return stscreds.NewAssumeRoleProvider(client, s.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = s.SessionName
		if s.ExternalID != "" {
			o.ExternalID = aws.String(s.ExternalID)
		}
	}), nil
}
