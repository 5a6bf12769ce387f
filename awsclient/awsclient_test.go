package awsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/multilangd/multilangd/internal/testenv"
	"github.com/multilangd/multilangd/properties"
)

// isolateEnv gives the test a clean AWS environment: no shared config, no
// profile, no ambient credentials. AWS_CA_BUNDLE is kept on purpose: the
// machine sets it, and New must work with it (see New).
func isolateEnv(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return dir
}

func writeProps(t *testing.T, dir, body string) *properties.Config {
	t.Helper()
	p := filepath.Join(dir, "app.properties")
	content := "executableName = app.py\napplicationName = app\nstreamName = s\n" + body
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := properties.Load(p)
	if err != nil {
		t.Fatalf("load %s: %v", p, err)
	}
	return cfg
}

// fakeService records requests and answers every one with a fixed status.
type fakeService struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newFakeService(t *testing.T, status int, body string) *fakeService {
	f := &fakeService{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) auth() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

// TestEmulators builds clients from a properties file pointing at each pair of
// real emulators and makes one call with each client.
func TestEmulators(t *testing.T) {
	pairs := []struct{ kinesis, dynamo testenv.Kind }{
		{testenv.Kinesalite, testenv.Dynalite},
		{testenv.KinesisLocal, testenv.DynamoDBLocal},
	}
	for _, p := range pairs {
		t.Run(string(p.kinesis)+"+"+string(p.dynamo), func(t *testing.T) {
			dir := isolateEnv(t)
			t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretKey)
			k := testenv.StartT(t, p.kinesis)
			d := testenv.StartT(t, p.dynamo)
			cw := newFakeService(t, 400, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>fake</Message></Error></ErrorResponse>`)
			cfg := writeProps(t, dir, fmt.Sprintf(`regionName = us-east-1
kinesisEndpoint = %s
dynamoDbClient.endpointOverride = %s
cloudWatchClient.endpointOverride = %s
cloudWatchClient.region = eu-west-1
AwsCredentialsProvider = SystemPropertyCredentialsProvider, EnvironmentVariableCredentialsProvider
`, k.Endpoint, d.Endpoint, cw.srv.URL))

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := New(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			testenv.CreateStreamT(t, c.Kinesis, "s", 1)
			ls, err := c.Kinesis.ListStreams(ctx, &kinesis.ListStreamsInput{})
			if err != nil || len(ls.StreamNames) != 1 || ls.StreamNames[0] != "s" {
				t.Fatalf("ListStreams: %v %v", ls, err)
			}
			if _, err := c.DynamoDB.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
				t.Fatalf("ListTables: %v", err)
			}
			_, err = c.CloudWatch.ListMetrics(ctx, &cloudwatch.ListMetricsInput{}, func(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 })
			if err == nil {
				t.Fatal("the fake CloudWatch answers 400; want an error")
			}
			auth := cw.auth()
			if len(auth) == 0 || !strings.Contains(auth[0], "Credential="+testenv.AccessKey+"/") || !strings.Contains(auth[0], "/eu-west-1/monitoring/") {
				t.Fatalf("CloudWatch request not signed with env credentials for eu-west-1: %q", auth)
			}
			if c.KinesisConfig.Region != "us-east-1" || c.CloudWatchConfig.Region != "eu-west-1" {
				t.Fatalf("regions: %s %s", c.KinesisConfig.Region, c.CloudWatchConfig.Region)
			}
			pk, pd := k.PID(), d.PID()
			if err := k.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := d.Stop(); err != nil {
				t.Fatal(err)
			}
			if testenv.ProcessAlive(pk) || testenv.ProcessAlive(pd) {
				t.Fatalf("emulator still alive after Stop: %d %d", pk, pd)
			}
			if left := groupMembers(pk, pd); len(left) > 0 {
				t.Fatalf("processes left in the emulators' process groups: %v", left)
			}
		})
	}
}

// groupMembers lists live processes whose process group is one of pgids
// (an emulator's children, such as DynamoDB Local's JVM).
func groupMembers(pgids ...int) []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		// fields after ")": state ppid pgrp ...
		fields := strings.Fields(s[i+1:])
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		for _, g := range pgids {
			if fields[2] == fmt.Sprint(g) {
				out = append(out, f)
			}
		}
	}
	return out
}

func TestRegionResolution(t *testing.T) {
	tests := []struct {
		name, props, envRegion string
		wantK, wantD           string
		wantErr                error
	}{
		{"regionName", "regionName = eu-west-1\n", "", "eu-west-1", "eu-west-1", nil},
		{"per-client override", "regionName = eu-west-1\nkinesisClient.region = us-west-2\n", "", "us-west-2", "eu-west-1", nil},
		{"SDK default chain", "", "ap-south-1", "ap-south-1", "ap-south-1", nil},
		{"regionName beats env", "regionName = eu-west-1\n", "ap-south-1", "eu-west-1", "eu-west-1", nil},
		{"no region", "", "", "", "", ErrNoRegion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolateEnv(t)
			if tt.envRegion != "" {
				t.Setenv("AWS_REGION", tt.envRegion)
			}
			cfg := writeProps(t, dir, tt.props+"AwsCredentialsProvider = AnonymousCredentialsProvider\n")
			c, err := New(context.Background(), cfg, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.KinesisConfig.Region != tt.wantK || c.DynamoDBConfig.Region != tt.wantD {
				t.Fatalf("regions %s/%s", c.KinesisConfig.Region, c.DynamoDBConfig.Region)
			}
		})
	}
}

// TestRegionFromInstanceMetadata: with no regionName, AWS_REGION or profile
// region, the region comes from EC2 instance metadata, as in the Java SDK's
// default region chain.
func TestRegionFromInstanceMetadata(t *testing.T) {
	dir := isolateEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			_, _ = io.WriteString(w, "token")
		case r.Method == http.MethodGet && r.URL.Path == "/latest/dynamic/instance-identity/document":
			_, _ = io.WriteString(w, `{"region":"eu-north-1","availabilityZone":"eu-north-1a"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	cfg := writeProps(t, dir, "kinesisClient.region = us-west-2\nAwsCredentialsProvider = AnonymousCredentialsProvider\n")
	c, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.KinesisConfig.Region != "us-west-2" || c.DynamoDBConfig.Region != "eu-north-1" || c.CloudWatchConfig.Region != "eu-north-1" {
		t.Fatalf("regions %s/%s/%s, want us-west-2/eu-north-1/eu-north-1",
			c.KinesisConfig.Region, c.DynamoDBConfig.Region, c.CloudWatchConfig.Region)
	}
}

func TestCredentialChains(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		setup    func(t *testing.T, dir string)
		wantKey  string
		wantErr  string
	}{
		{"environment", "EnvironmentVariableCredentialsProvider", func(t *testing.T, _ string) {
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
		}, "AKIDENV", ""},
		{"environment missing", "EnvironmentVariableCredentialsProvider", nil, "", "AWS_ACCESS_KEY_ID"},
		{"default chain uses env", "DefaultCredentialsProvider", func(t *testing.T, _ string) {
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDDEFAULT")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
		}, "AKIDDEFAULT", ""},
		{"v1 alias", "DefaultAWSCredentialsProviderChain", func(t *testing.T, _ string) {
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDV1")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
		}, "AKIDV1", ""},
		{"named profile", "ProfileCredentialsProvider|dev", writeProfile("dev", "AKIDPROFILE"), "AKIDPROFILE", ""},
		{"default profile", "ProfileCredentialsProvider", writeProfile("default", "AKIDDEFPROF"), "AKIDDEFPROF", ""},
		{"missing profile falls through the chain", "ProfileCredentialsProvider|nope, EnvironmentVariableCredentialsProvider", func(t *testing.T, dir string) {
			writeProfile("dev", "AKIDX")(t, dir)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFALLBACK")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
		}, "AKIDFALLBACK", ""},
		{"chain order: first wins", "ProfileCredentialsProvider|dev, EnvironmentVariableCredentialsProvider", func(t *testing.T, dir string) {
			writeProfile("dev", "AKIDFIRST")(t, dir)
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSECOND")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
		}, "AKIDFIRST", ""},
		{"profile without credentials does not borrow the container's", "ProfileCredentialsProvider|dev, EnvironmentVariableCredentialsProvider", func(t *testing.T, dir string) {
			// Java's ProfileCredentialsProvider reads only the profile; the Go
			// SDK's profile chain would fall back to container/instance roles.
			p := filepath.Join(dir, "config")
			if err := os.WriteFile(p, []byte("[profile dev]\nregion = eu-west-1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AWS_CONFIG_FILE", p)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"s","Token":"t","Expiration":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
			}))
			t.Cleanup(srv.Close)
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/creds")
			t.Setenv("AWS_ACCESS_KEY_ID", "AKIDNEXT")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
		}, "AKIDNEXT", ""},
		{"container without env", "ContainerCredentialsProvider", nil, "", "AWS_CONTAINER_CREDENTIALS"},
		{"web identity without env", "WebIdentityTokenFileCredentialsProvider", nil, "", "AWS_ROLE_ARN"},
		{"system property never yields", "SystemPropertyCredentialsProvider, EnvironmentVariableCredentialsProvider", nil, "", "JVM system properties"},
		{"container endpoint", "ContainerCredentialsProvider", func(t *testing.T, _ string) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "tok" {
					w.WriteHeader(http.StatusForbidden)
					return
				}
				_, _ = io.WriteString(w, `{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"s","Token":"t","Expiration":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
			}))
			t.Cleanup(srv.Close)
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/creds")
			t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok")
		}, "AKIDCONTAINER", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolateEnv(t)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			cfg := writeProps(t, dir, "regionName = us-east-1\nAwsCredentialsProvider = "+tt.provider+"\n")
			c, err := New(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			creds, err := c.KinesisConfig.Credentials.Retrieve(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ~%q", err, tt.wantErr)
				}
				return
			}
			if err != nil || creds.AccessKeyID != tt.wantKey {
				t.Fatalf("creds %q, err %v; want %q", creds.AccessKeyID, err, tt.wantKey)
			}
		})
	}
}

func writeProfile(name, key string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, "credentials")
		body := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = s\n", name, key)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", p)
	}
}

// TestAssumeRole drives StsAssumeRoleCredentialsProvider against a fake STS
// endpoint given with endpoint=url^signingRegion.
func TestAssumeRole(t *testing.T) {
	dir := isolateEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBASE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	var (
		mu   sync.Mutex
		form string
		auth string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		form, auth = r.Form.Encode(), r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>AKIDROLE</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>%s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/sess</Arn><AssumedRoleId>ARO:sess</AssumedRoleId></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer srv.Close()
	cfg := writeProps(t, dir, "regionName = us-east-1\nAwsCredentialsProvider = StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/r|sess|externalId=ext-1|endpoint="+srv.URL+"^eu-central-1\n")
	c, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.KinesisConfig.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKIDROLE" {
		t.Fatalf("creds %v err %v", creds, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"Action=AssumeRole", "ExternalId=ext-1", "RoleSessionName=sess", "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"} {
		if !strings.Contains(form, want) {
			t.Errorf("STS request %q lacks %q", form, want)
		}
	}
	if !strings.Contains(auth, "Credential=AKIDBASE/") || !strings.Contains(auth, "/eu-central-1/sts/") {
		t.Errorf("STS request signed as %q", auth)
	}
}

func TestAnonymousIsUnsigned(t *testing.T) {
	dir := isolateEnv(t)
	f := newFakeService(t, 400, `{"__type":"ValidationException","message":"fake"}`)
	cfg := writeProps(t, dir, "regionName = us-east-1\nkinesisEndpoint = "+f.srv.URL+"\nAwsCredentialsProvider = AnonymousCredentialsProvider\n")
	c, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Kinesis.ListStreams(context.Background(), &kinesis.ListStreamsInput{}, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	if a := f.auth(); len(a) != 1 || a[0] != "" {
		t.Fatalf("anonymous request carried Authorization %q", a)
	}
	if _, ok := c.KinesisConfig.Credentials.(aws.AnonymousCredentials); !ok {
		t.Fatalf("credentials %T", c.KinesisConfig.Credentials)
	}
}

func TestPerClientCredentials(t *testing.T) {
	dir := isolateEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	writeProfile("ddb", "AKIDDDB")(t, dir)
	cfg := writeProps(t, dir, "regionName = us-east-1\nAwsCredentialsProvider = EnvironmentVariableCredentialsProvider\nawscredentialsproviderDynamoDB = ProfileCredentialsProvider|ddb\n")
	c, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		p    aws.CredentialsProvider
		want string
	}{{"kinesis", c.KinesisConfig.Credentials, "AKIDENV"}, {"dynamodb", c.DynamoDBConfig.Credentials, "AKIDDDB"}, {"cloudwatch", c.CloudWatchConfig.Credentials, "AKIDENV"}} {
		creds, err := tt.p.Retrieve(context.Background())
		if err != nil || creds.AccessKeyID != tt.want {
			t.Errorf("%s: %q %v, want %q", tt.name, creds.AccessKeyID, err, tt.want)
		}
	}
}
