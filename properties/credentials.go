package properties

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Credentials provider names (SDK v2 short names) that Load produces.
const (
	CredDefault             = "DefaultCredentialsProvider"
	CredEnvironment         = "EnvironmentVariableCredentialsProvider"
	CredSystemProperty      = "SystemPropertyCredentialsProvider"
	CredProfile             = "ProfileCredentialsProvider"
	CredInstanceProfile     = "InstanceProfileCredentialsProvider"
	CredContainer           = "ContainerCredentialsProvider"
	CredWebIdentity         = "WebIdentityTokenFileCredentialsProvider"
	CredAnonymous           = "AnonymousCredentialsProvider"
	CredStsAssumeRole       = "StsAssumeRoleCredentialsProvider"
	credPackageMultilangV2  = "software.amazon.kinesis.multilang.auth."
	credPackageSDKv2        = "software.amazon.awssdk.auth.credentials."
	credPackageSTSv2        = "software.amazon.awssdk.services.sts.auth."
	credPackageSDKv1        = "com.amazonaws.auth."
	credPackageSDKv1Profile = "com.amazonaws.auth.profile."
	credPackageMultilangV1  = "com.amazonaws.services.kinesis.multilang.auth."
)

// credAliases maps every accepted spelling (after stripping a known package
// prefix) to the SDK v2 short name. SDK v1 names come from KCL ≤ 2.6 files.
var credAliases = map[string]string{
	CredDefault:                                  CredDefault,
	"DefaultAWSCredentialsProviderChain":         CredDefault,
	CredEnvironment:                              CredEnvironment,
	CredSystemProperty:                           CredSystemProperty,
	"SystemPropertiesCredentialsProvider":        CredSystemProperty,
	CredProfile:                                  CredProfile,
	CredInstanceProfile:                          CredInstanceProfile,
	CredContainer:                                CredContainer,
	"EC2ContainerCredentialsProviderWrapper":     CredContainer,
	CredWebIdentity:                              CredWebIdentity,
	"WebIdentityTokenCredentialsProvider":        CredWebIdentity,
	CredAnonymous:                                CredAnonymous,
	"AnonymousAWSCredentialsProvider":            CredAnonymous,
	CredStsAssumeRole:                            CredStsAssumeRole,
	"KclStsAssumeRoleCredentialsProvider":        CredStsAssumeRole,
	"STSAssumeRoleSessionCredentialsProvider":    CredStsAssumeRole,
	"KclSTSAssumeRoleSessionCredentialsProvider": CredStsAssumeRole,
}

var base64ishRE = regexp.MustCompile(`^[A-Za-z0-9+/=]+$`)

var roleARNRE = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:iam::[0-9]{12}:role/.+$`)

// StsAssumeRole is the parsed argument list of a StsAssumeRoleCredentialsProvider
// entry: Name|roleArn|roleSessionName[|endpointRegion=..][|endpoint=url^signingRegion][|externalId=..].
type StsAssumeRole struct {
	RoleARN, SessionName string
	EndpointRegion       string
	Endpoint             string // URL with scheme ("https://" added when missing)
	SigningRegion        string
	ExternalID           string
}

// STS parses p's arguments; ok is false when p is not an STS entry. Load has
// already validated them.
func (p CredentialsProvider) STS() (s StsAssumeRole, ok bool) {
	if p.Name != CredStsAssumeRole || len(p.Args) < 2 {
		return s, false
	}
	s.RoleARN, s.SessionName = p.Args[0], p.Args[1]
	for _, a := range p.Args[2:] {
		k, v, found := strings.Cut(a, "=")
		if !found || strings.Contains(v, "=") {
			continue
		}
		switch strings.TrimSpace(k) {
		case "endpointRegion":
			s.EndpointRegion = strings.TrimSpace(v)
		case "endpoint":
			ep, region, _ := strings.Cut(strings.TrimSpace(v), "^")
			if !strings.Contains(ep, "://") {
				ep = "https://" + ep
			}
			s.Endpoint, s.SigningRegion = ep, region
		case "externalId":
			s.ExternalID = v
		}
	}
	return s, true
}

// Redacted renders the entry for display with secrets hidden: the STS
// externalId and any argument that looks like a secret.
func (p CredentialsProvider) Redacted() string {
	parts := []string{p.Name}
	for _, a := range p.Args {
		k, _, isKV := strings.Cut(a, "=")
		switch {
		case isKV && (strings.EqualFold(strings.TrimSpace(k), "externalId") || looksSecret(k)):
			parts = append(parts, k+"=<redacted>")
		case looksSecret(a):
			parts = append(parts, "<redacted>")
		default:
			parts = append(parts, a)
		}
	}
	return strings.Join(parts, "|")
}

func looksSecret(s string) bool {
	l := strings.ToLower(s)
	for _, w := range []string{"secret", "password", "token", "credential", "session_token", "accesskey", "access_key"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	// long base64-ish strings (e.g. a pasted secret key)
	return len(s) >= 30 && base64ishRE.MatchString(s)
}

// parseCredentials parses an AwsCredentialsProvider value: comma-separated
// entries (trimmed, empties skipped), each Name[|arg]...
func parseCredentials(v string) ([]CredentialsProvider, []string, error) {
	var (
		out      []CredentialsProvider
		warnings []string
	)
	for _, raw := range strings.Split(v, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		fields := strings.Split(raw, "|")
		name := strings.TrimSpace(fields[0])
		short := name
		for _, pfx := range []string{credPackageMultilangV2, credPackageSDKv2, credPackageSTSv2, credPackageSDKv1Profile, credPackageSDKv1, credPackageMultilangV1} {
			if strings.HasPrefix(short, pfx) {
				short = strings.TrimPrefix(short, pfx)
				break
			}
		}
		canonical, ok := credAliases[short]
		if !ok {
			return nil, nil, fmt.Errorf("unknown credentials provider %q (supported: %s, %s|profile, %s, %s, %s, %s, %s, %s|roleArn|sessionName[|externalId=..][|endpointRegion=..][|endpoint=url^region], %s; SDK v1 names are accepted as aliases)",
				name, CredDefault, CredProfile, CredEnvironment, CredSystemProperty, CredInstanceProfile, CredContainer, CredWebIdentity, CredStsAssumeRole, CredAnonymous)
		}
		args := fields[1:]
		for i := range args {
			args[i] = strings.TrimSpace(args[i])
		}
		p := CredentialsProvider{Name: canonical, Args: args, Raw: raw}
		switch canonical {
		case CredProfile:
			if len(args) > 1 {
				return nil, nil, fmt.Errorf("%s takes at most one argument (the profile name), got %d", name, len(args))
			}
		case CredStsAssumeRole:
			if err := validateSTS(p); err != nil {
				return nil, nil, err
			}
		default:
			if len(args) > 0 {
				warnings = append(warnings, fmt.Sprintf("%s takes no arguments; %q ignored (as in Java)", canonical, strings.Join(args, "|")))
				p.Args = nil
			}
		}
		if short != canonical {
			warnings = append(warnings, fmt.Sprintf("credentials provider %q is read as %s", name, canonical))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, warnings, fmt.Errorf("no credential providers were specified")
	}
	onlySysProp := true
	for _, p := range out {
		if p.Name == CredAnonymous && len(out) > 1 {
			return nil, warnings, fmt.Errorf("%s cannot be combined with other providers in a chain", CredAnonymous)
		}
		if p.Name != CredSystemProperty {
			onlySysProp = false
		}
	}
	if onlySysProp {
		return nil, warnings, fmt.Errorf("%s reads JVM system properties, which multilangd does not have; use %s (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) instead", CredSystemProperty, CredEnvironment)
	}
	for _, p := range out {
		if p.Name == CredSystemProperty {
			warnings = append(warnings, fmt.Sprintf("%s never yields credentials in multilangd (no JVM system properties); the rest of the chain is used", CredSystemProperty))
		}
	}
	return out, warnings, nil
}

func validateSTS(p CredentialsProvider) error {
	if len(p.Args) < 2 || p.Args[0] == "" || p.Args[1] == "" {
		return fmt.Errorf("%s needs a role ARN and a session name: %s|arn:aws:iam::123456789012:role/name|session[|externalId=..]", p.Name, CredStsAssumeRole)
	}
	if !roleARNRE.MatchString(p.Args[0]) {
		return fmt.Errorf("%s: %q is not an IAM role ARN", CredStsAssumeRole, p.Args[0])
	}
	for _, a := range p.Args[2:] {
		k, v, found := strings.Cut(a, "=")
		if !found || strings.Contains(v, "=") {
			return fmt.Errorf("%s: argument %q is not key=value (Java ignores it; multilangd rejects it)", CredStsAssumeRole, a)
		}
		switch strings.TrimSpace(k) {
		case "endpointRegion", "externalId":
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("%s: %s is empty", CredStsAssumeRole, k)
			}
		case "endpoint":
			ep, _, _ := strings.Cut(strings.TrimSpace(v), "^")
			if !strings.Contains(ep, "://") {
				ep = "https://" + ep
			}
			if u, err := url.Parse(ep); err != nil || u.Host == "" {
				return fmt.Errorf("%s: endpoint %q is not a URL", CredStsAssumeRole, v)
			}
		default:
			return fmt.Errorf("%s: unknown argument %q (want endpointRegion, endpoint or externalId)", CredStsAssumeRole, k)
		}
	}
	return nil
}
