package properties

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Load reads the KCL .properties file at path and returns the typed,
// validated configuration. Problems are returned as *Error values (several
// joined with errors.Join), each naming file, line, key and value; non-fatal
// findings are in Config.Warnings.
//
// When err is non-nil the returned Config is nil if the file could not be
// read; otherwise it is returned only so that callers can show its Warnings
// (an unknown-key warning often explains a missing-key error) — its values
// must not be used.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read properties file: %v", err), Err: err}
	}
	return Parse(path, data)
}

// Parse is Load for content already in memory; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	entries, err := ReadEntries(name, data)
	l := &loader{file: name, cfg: Defaults()}
	l.cfg.Source = name
	l.cfg.Lines = map[string]int{}
	if err != nil {
		l.errs = append(l.errs, err)
	}
	l.apply(entries)
	l.finish()
	if len(l.errs) > 0 {
		return l.cfg, joinErrors(l.errs)
	}
	return l.cfg, nil
}

// Defaults returns a Config holding the Java effective defaults: each key's
// registry default applied by its own parser (required keys empty, WorkerID
// empty, RetrievalMode DEFAULT; defaults derived from other keys are filled
// in by Parse).
func Defaults() *Config {
	l := &loader{file: "(defaults)", cfg: &Config{}}
	for _, k := range registry {
		if k.def == "" {
			continue
		}
		if err := k.set(l, Entry{Key: k.name, Value: k.def}); err != nil {
			panic(fmt.Sprintf("properties: registry default of %s: %v", k.name, err))
		}
	}
	if len(l.cfg.Warnings) > 0 {
		panic(fmt.Sprintf("properties: registry default warns: %v", l.cfg.Warnings))
	}
	return l.cfg
}

// loader accumulates the state of one Parse.
type loader struct {
	file string
	cfg  *Config
	errs []error

	set         map[string]Entry // canonical key -> applied entry
	pollingKeys []string         // polling keys set to a non-zero value
	workerIDSet bool

	positionEntry  *Entry
	timestamp      time.Time
	timestampEntry *Entry
}

func (l *loader) warn(e Entry, msg string) {
	l.cfg.Warnings = append(l.cfg.Warnings, Warning{File: l.file, Line: e.Line, Key: e.Key, Message: msg})
}

func (l *loader) fail(e Entry, err error) {
	l.errs = append(l.errs, &Error{File: l.file, Line: e.Line, Key: e.Key, Value: e.Value, Msg: err.Error()})
}

// missing reports a required key that has no usable value, unless an error
// about a line giving that key was already reported (the line is there but
// its value was rejected: "missing" would only mislead).
func (l *loader) missing(key, msg string) {
	for _, e := range Errors(joinErrors(l.errs)) {
		if e.Line > 0 && l.sameSetting(e.Key, key) {
			return
		}
	}
	l.errs = append(l.errs, &Error{File: l.file, Key: key, Msg: msg})
}

// sameSetting reports whether the key as written names the required key
// (credentials keys are case-insensitive, as in Java).
func (l *loader) sameSetting(written, key string) bool {
	if strings.EqualFold(key, keyCredentials) {
		return strings.EqualFold(written, keyCredentials)
	}
	return written == key
}

var credentialsWordRE = regexp.MustCompile(`(?i)awscredentialsprovider`)

// canonicalKey maps a key as written to the key in knownKeys. ok is false for
// keys that are not applied (a warning or error has been recorded).
func (l *loader) canonicalKey(e Entry) (string, bool) {
	k := e.Key
	if strings.HasPrefix(strings.ToLower(k), "awscredentialsprovider") {
		k = credentialsWordRE.ReplaceAllString(k, "awsCredentialsProvider")
	}
	if a, ok := aliases[k]; ok {
		k = a
	}
	for prefix, inner := range beanPrefixes {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			for _, in := range inner {
				if rest == in {
					return in, true
				}
			}
			l.warn(e, fmt.Sprintf("unknown key, ignored (%s accepts %s)", strings.TrimSuffix(prefix, "."), strings.Join(inner, ", ")))
			return "", false
		}
	}
	if _, ok := knownKeys[k]; ok {
		return k, true
	}
	for _, client := range []string{"kinesisClient.", "dynamoDbClient.", "cloudWatchClient."} {
		if strings.HasPrefix(k, client) {
			l.warn(e, fmt.Sprintf("SDK client builder setting not supported by multilangd, ignored (supported: %sregion, %sendpointOverride)", client, client))
			return "", false
		}
	}
	for _, p := range []string{"kinesisCredentialsProvider.", "dynamoDBCredentialsProvider.", "cloudWatchCredentialsProvider."} {
		if strings.HasPrefix(k, p) {
			l.fail(e, fmt.Errorf("credentials-provider builder keys are not supported by multilangd; use AwsCredentialsProvider = Name|arg (e.g. ProfileCredentialsProvider|dev)"))
			return "", false
		}
	}
	if hint, ok := legacyKeys[k]; ok {
		msg := "KCL 1.x key, ignored by KCL 2.x/3.x and multilangd"
		if hint != "" {
			msg += "; " + hint
		}
		l.warn(e, msg)
		return "", false
	}
	l.warn(e, "unknown key, ignored"+suggest(k))
	return "", false
}

// suggest returns a "did you mean" clause for near-misses of known keys.
func suggest(k string) string {
	best, bestD := "", 1<<30
	for known := range knownKeys {
		if strings.EqualFold(known, k) {
			return fmt.Sprintf("; keys are case-sensitive: did you mean %s?", known)
		}
		if d := levenshtein(strings.ToLower(k), strings.ToLower(known)); d < bestD || (d == bestD && known < best) {
			best, bestD = known, d
		}
	}
	limit := 2
	if len(k) >= 20 {
		limit = 3
	}
	if bestD <= limit {
		return fmt.Sprintf("; did you mean %s?", best)
	}
	return ""
}

// apply resolves keys, reports duplicates and applies the winning entries in
// file order.
func (l *loader) apply(entries []Entry) {
	l.set = map[string]Entry{}
	type win struct {
		canonical string
		e         Entry
	}
	winners := map[string]win{}
	for _, e := range entries {
		c, ok := l.canonicalKey(e)
		if !ok {
			continue
		}
		if prev, dup := winners[c]; dup {
			switch {
			case strings.HasPrefix(c, "awsCredentialsProvider") && prev.e.Key != e.Key:
				l.fail(e, fmt.Errorf("credentials provider given twice (also as %s on line %d); Java fails at startup too", prev.e.Key, prev.e.Line))
			case prev.e.Key == e.Key:
				l.warn(e, fmt.Sprintf("duplicate key: this value replaces the one on line %d", prev.e.Line))
			default:
				l.warn(e, fmt.Sprintf("%s on line %d sets the same setting; the later line wins (Java's choice depends on hash order)", prev.e.Key, prev.e.Line))
			}
		}
		winners[c] = win{c, e}
	}
	ordered := make([]win, 0, len(winners))
	for _, w := range winners {
		ordered = append(ordered, w)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].e.Line < ordered[j].e.Line })
	for _, w := range ordered {
		spec := knownKeys[w.canonical]
		if err := spec.set(l, w.e); err != nil {
			l.fail(w.e, err)
			continue
		}
		switch {
		case spec.javaNoOp:
			l.warn(w.e, "accepted for compatibility but has no effect, as in the Java daemon 2.x/3.x (see docs/compatibility.md)")
		case spec.inert:
			l.warn(w.e, "accepted for compatibility but has no effect in multilangd yet (see docs/compatibility.md)")
		}
		l.set[w.canonical] = w.e
		l.cfg.Lines[w.canonical] = w.e.Line
		if spec.polling && isNonZero(w.e.Value) {
			l.pollingKeys = append(l.pollingKeys, w.e.Key)
		}
	}
}

func isNonZero(v string) bool {
	n, err := parseInt(v, math.MinInt64, math.MaxInt64)
	return err != nil || n != 0
}

// streamARNRE is Java's StreamARN pattern.
var streamARNRE = regexp.MustCompile(`^arn:aws[^:]*:kinesis:([a-z0-9-]+):([0-9]{12}):stream/([a-zA-Z0-9_.-]{1,128})$`)

// finish applies the cross-key rules and derived defaults, in Java's
// validation order.
func (l *loader) finish() {
	c := l.cfg
	if e, ok := l.set["executableName"]; !ok {
		l.missing("executableName", "Must provide an executable name in the properties file, e.g. executableName = sampleapp.py")
	} else if strings.TrimSpace(c.ExecutableName) == "" {
		l.fail(e, fmt.Errorf("executable name is empty (Java fails only when the first child is started)"))
	}
	if strings.TrimSpace(c.ApplicationName) == "" {
		if e, ok := l.set["applicationName"]; ok {
			l.fail(e, fmt.Errorf("application name is required (the value is blank)"))
		} else {
			l.missing("applicationName", "Application name is required")
		}
	}
	if e, ok := l.set["streams"]; ok && c.MultiStream() {
		for _, k := range []string{"streamName", "streamArn"} {
			if s, ok := l.set[k]; ok {
				l.warn(s, fmt.Sprintf("ignored: streams (line %d) lists the streams of this multi-stream application", e.Line))
			}
		}
	} else if e, ok := l.set["streamArn"]; ok && strings.TrimSpace(c.StreamARN) != "" {
		m := streamARNRE.FindStringSubmatch(strings.TrimSpace(c.StreamARN))
		if m == nil {
			l.fail(e, fmt.Errorf("not a Kinesis stream ARN (arn:aws:kinesis:<region>:<12-digit account>:stream/<name>)"))
		} else {
			c.StreamARN = strings.TrimSpace(c.StreamARN)
			if s, ok := l.set["streamName"]; ok && c.StreamName != m[3] {
				l.warn(s, fmt.Sprintf("streamArn (line %d) overrides streamName: using stream %q", e.Line, m[3]))
			}
			c.StreamName = m[3]
			if c.RegionName != "" && c.RegionName != m[1] && c.KinesisRegion == "" {
				l.warn(e, fmt.Sprintf("the ARN's region %s differs from regionName %s; the clients use regionName (as in Java)", m[1], c.RegionName))
			}
		}
	} else if strings.TrimSpace(c.StreamName) == "" {
		l.missing("streamName", "Stream name or Stream Arn is required. Stream Arn takes precedence if both are passed in.")
	}
	if len(c.CredentialsKinesis) == 0 {
		if _, ok := l.set[keyCredentials]; !ok {
			l.missing("AwsCredentialsProvider", "A basic set of AWS credentials must be provided (e.g. AwsCredentialsProvider = DefaultCredentialsProvider)")
		}
	}
	if len(c.CredentialsDynamoDB) == 0 {
		c.CredentialsDynamoDB = c.CredentialsKinesis
	}
	if len(c.CredentialsCloudWatch) == 0 {
		c.CredentialsCloudWatch = c.CredentialsKinesis
	}

	if e, ok := l.set["tableName"]; ok && strings.TrimSpace(c.TableName) == "" {
		l.fail(e, fmt.Errorf("table name is empty (remove the key to use applicationName)"))
	} else if !ok {
		c.TableName = c.ApplicationName
	}
	if !l.workerIDSet {
		c.WorkerID = uuid.NewString()
	}
	_, c.ClientVersionConfigSet = l.set["clientVersionConfig"]
	if _, ok := l.set["leaseAssignmentIntervalMillis"]; !ok {
		c.LeaseAssignmentInterval = 2 * c.FailoverTime
	}
	if c.LeaderLockLeaseDuration < 2*c.LeaderLockHeartbeatPeriod {
		e, ok := l.set["dynamoDbLockBasedLeaderHeartbeatPeriodInMillis"]
		if !ok {
			e = l.set["dynamoDbLockBasedLeaderLeaseDurationInMillis"]
		}
		l.fail(e, fmt.Errorf("the Leader lock's heartbeat period (%s) must be at most half its lease duration (%s), as AmazonDynamoDBLockClient requires",
			c.LeaderLockHeartbeatPeriod, c.LeaderLockLeaseDuration))
	}
	if _, ok := l.set["fanoutConfig.consumerName"]; !ok {
		c.Fanout.ConsumerName = c.ApplicationName
	}
	if c.WorkerMetricsTable.TableName == "" {
		c.WorkerMetricsTable.TableName = c.ApplicationName + "-WorkerMetricStats"
	}
	if c.CoordinatorStateTable.TableName == "" {
		c.CoordinatorStateTable.TableName = c.ApplicationName + "-CoordinatorState"
	}

	if l.timestampEntry != nil {
		if l.positionEntry != nil {
			l.warn(*l.positionEntry, fmt.Sprintf("initialPositionInStreamExtended (line %d) takes precedence: AT_TIMESTAMP %s", l.timestampEntry.Line, l.timestamp.Format(time.RFC3339)))
		}
		c.InitialPosition = PositionAtTimestamp
		c.InitialTimestamp = l.timestamp
	}

	if c.RetrievalMode == RetrievalDefault {
		if len(l.pollingKeys) > 0 {
			c.RetrievalMode = RetrievalPolling
			e := l.set[canonicalOf(l.pollingKeys[0])]
			l.warn(e, fmt.Sprintf("retrievalMode DEFAULT resolves to POLLING because polling keys are set (%s); set retrievalMode = POLLING to make this explicit, or remove them for enhanced fan-out", strings.Join(l.pollingKeys, ", ")))
		} else {
			c.RetrievalMode = RetrievalFanout
		}
	}
}

// canonicalOf maps a written polling key (flat or pollingConfig.) to its
// canonical spelling.
func canonicalOf(k string) string {
	return strings.TrimPrefix(k, "pollingConfig.")
}
