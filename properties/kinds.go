package properties

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// setter applies one entry's value to the config being built.
type setter func(l *loader, e Entry) error

// kind is how one key's value is parsed, stored and shown. The constructors
// below derive all three from one field accessor, so the parser, `validate`
// and the docs' type column cannot disagree.
type kind struct {
	set setter
	// show formats the resolved value for `validate`; "" means unset (the
	// key's unset text is shown). nil: the key stores nothing.
	show func(*Config) string
	// typ is the type column of docs/configuration.md.
	typ string
}

// ---- kinds of value ----

// typed is k with a more telling docs type.
func typed(k kind, typ string) kind {
	k.typ = typ
	return k
}

// str keeps the value exactly as written, like Java: trailing whitespace
// becomes part of a name (and so of the lease table name), which is worth a
// warning but must not be "fixed" or a mixed fleet would split.
func str(f func(*Config) *string) kind {
	set := func(l *loader, e Entry) error {
		if strings.TrimSpace(e.Value) != e.Value && e.Key != "executableName" && e.Key != "processingLanguage" {
			l.warn(e, fmt.Sprintf("value %q has surrounding whitespace, kept as written (as in Java)", e.Value))
		}
		*f(l.cfg) = e.Value
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return *f(c) }, typ: "string"}
}

// intType is the docs' type of an integer in [min, max].
func intType(min, max int64) string {
	switch {
	case min <= math.MinInt32 && max >= maxInt32:
		return "int"
	case max >= maxInt32:
		return fmt.Sprintf("int ≥ %d", min)
	default:
		return fmt.Sprintf("%d..%d", min, max)
	}
}

// integer parses a decimal integer in [min, max] into an int or int64 field.
func integer[T int | int64](min, max int64, f func(*Config) *T) kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, max)
		if err != nil {
			return err
		}
		*f(l.cfg) = T(n)
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return strconv.FormatInt(int64(*f(c)), 10) }, typ: intType(min, max)}
}

// intPtr is an integer that is nil when unset (a Java wrapper type with no
// default).
func intPtr(min, max int64, f func(*Config) **int) kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, max)
		if err != nil {
			return err
		}
		v := int(n)
		*f(l.cfg) = &v
		return nil
	}
	show := func(c *Config) string {
		if p := *f(c); p != nil {
			return strconv.Itoa(*p)
		}
		return ""
	}
	return kind{set: set, show: show, typ: intType(min, max)}
}

func showMillis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// millis parses a long number of milliseconds.
func millis(min int64, f func(*Config) *time.Duration) kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return err
		}
		*f(l.cfg) = time.Duration(n) * time.Millisecond
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return showMillis(*f(c)) }, typ: fmt.Sprintf("ms ≥ %d", min)}
}

// millisPtr is millis that is nil when unset.
func millisPtr(min int64, f func(*Config) **time.Duration) kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, min, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return err
		}
		d := time.Duration(n) * time.Millisecond
		*f(l.cfg) = &d
		return nil
	}
	show := func(c *Config) string {
		if p := *f(c); p != nil {
			return showMillis(*p)
		}
		return ""
	}
	return kind{set: set, show: show, typ: fmt.Sprintf("ms ≥ %d", min)}
}

func isoDuration(f func(*Config) *time.Duration) kind {
	set := func(l *loader, e Entry) error {
		d, err := parseISODuration(e.Value)
		if err != nil {
			return err
		}
		*f(l.cfg) = d
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return isoString(*f(c)) }, typ: "ISO-8601 duration"}
}

// float parses a number in (min, max] (min inclusive when minIncl). The
// value math.MaxFloat64 (Java's Double.MAX_VALUE, "no limit") shows as unset.
func float(min float64, minIncl bool, max float64, f func(*Config) *float64) kind {
	set := func(l *loader, e Entry) error {
		v, err := parseFloat(e.Value)
		if err != nil {
			return err
		}
		if v < min || (!minIncl && v == min) || v > max {
			if math.IsInf(max, 1) {
				return fmt.Errorf("must be > %g", min)
			}
			return fmt.Errorf("must be > %g and <= %g", min, max)
		}
		*f(l.cfg) = v
		return nil
	}
	show := func(c *Config) string {
		if v := *f(c); v < math.MaxFloat64 {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
		return ""
	}
	open := "("
	if minIncl {
		open = "["
	}
	typ := fmt.Sprintf("number in %s%g, %g]", open, min, max)
	if math.IsInf(max, 1) {
		typ = fmt.Sprintf("number > %g", min)
	}
	return kind{set: set, show: show, typ: typ}
}

func boolean(f func(*Config) *bool) kind {
	set := func(l *loader, e Entry) error {
		b, err := parseBoolWarn(l, e)
		if err != nil {
			return err
		}
		*f(l.cfg) = b
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return strconv.FormatBool(*f(c)) }, typ: "bool"}
}

// parseBoolWarn parses a boolean and warns where Java would read it
// differently.
func parseBoolWarn(l *loader, e Entry) (bool, error) {
	b, trimmed, err := parseBool(e.Value)
	if err != nil {
		return false, err
	}
	if trimmed && b {
		l.warn(e, "value has surrounding whitespace; Java reads it as false, multilangd reads it as true")
	}
	return b, nil
}

// enumType is the docs' type of one of allowed.
func enumType(allowed ...string) string {
	return "`" + strings.Join(allowed, "` \\| `") + "`"
}

func enum(f func(*Config) *string, allowed ...string) kind {
	set := func(l *loader, e Entry) error {
		v, err := parseEnumWarn(l, e, allowed...)
		if err != nil {
			return err
		}
		*f(l.cfg) = v
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return *f(c) }, typ: enumType(allowed...)}
}

// parseEnumWarn parses an enum value and warns where Java would reject it.
func parseEnumWarn(l *loader, e Entry, allowed ...string) (string, error) {
	v, err := parseEnum(e.Value, allowed...)
	if err != nil {
		return "", err
	}
	warnTrimmedEnum(l, e)
	return v, nil
}

func warnTrimmedEnum(l *loader, e Entry) {
	if strings.TrimSpace(e.Value) != e.Value {
		l.warn(e, "value has surrounding whitespace; Java rejects it at startup, multilangd trims it")
	}
}

func region(f func(*Config) *string) kind {
	set := func(l *loader, e Entry) error {
		v := strings.TrimSpace(e.Value)
		if v == "" {
			return fmt.Errorf("region is empty (remove the key to use the SDK default region chain)")
		}
		if strings.ContainsAny(v, " /:") {
			return fmt.Errorf("not a region name such as us-east-1")
		}
		*f(l.cfg) = v
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return *f(c) }, typ: "region"}
}

func endpoint(f func(*Config) *string) kind {
	set := func(l *loader, e Entry) error {
		v := strings.TrimSpace(e.Value)
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("not an endpoint URL with scheme, such as https://kinesis.us-east-1.amazonaws.com or http://localhost:4567")
		}
		*f(l.cfg) = v
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return *f(c) }, typ: "URL"}
}

func credentials(f func(*Config) *[]CredentialsProvider) kind {
	set := func(l *loader, e Entry) error {
		ps, warnings, err := parseCredentials(e.Value)
		for _, w := range warnings {
			l.warn(e, w)
		}
		if err != nil {
			return err
		}
		*f(l.cfg) = ps
		return nil
	}
	show := func(c *Config) string {
		ps := *f(c)
		parts := make([]string, len(ps))
		for j, p := range ps {
			parts[j] = p.Redacted()
		}
		return strings.Join(parts, ", ")
	}
	return kind{set: set, show: show, typ: "provider chain"}
}

// rejected is a key Java fails on at startup; it stores nothing.
func rejected(msg string) kind {
	return kind{set: func(*loader, Entry) error { return fmt.Errorf("%s", msg) }, typ: "—"}
}

// noEffect is a key that is only warned about; it stores nothing.
func noEffect(typ, msg string) kind {
	return kind{set: func(l *loader, e Entry) error { l.warn(e, msg); return nil }, typ: typ}
}

func logLevel(f func(*Config) *string) kind {
	set := func(l *loader, e Entry) error {
		v := strings.ToLower(strings.TrimSpace(e.Value))
		switch v {
		case "warning":
			v = "warn"
		case "debug", "info", "warn", "error":
		default:
			return fmt.Errorf("must be one of debug, info, warn, error")
		}
		*f(l.cfg) = v
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return *f(c) }, typ: enumType("debug", "info", "warn", "error")}
}

// ---- kinds of one key ----

func workerID() kind {
	set := func(l *loader, e Entry) error {
		if e.Value == "" {
			// Java 2.x/3.x keep "", so every worker using the file shares one id
			// and they renew each other's leases; the daemon refuses that.
			return fmt.Errorf("must not be empty (every worker using this file would share the id); remove the key for a random id")
		}
		l.cfg.WorkerID = e.Value
		l.workerIDSet = true
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return c.WorkerID }, typ: "string"}
}

func initialPosition() kind {
	set := func(l *loader, e Entry) error {
		v, err := parseEnum(e.Value, string(PositionLatest), string(PositionTrimHorizon), string(PositionAtTimestamp))
		if err != nil {
			return fmt.Errorf("must be LATEST or TRIM_HORIZON")
		}
		if v == string(PositionAtTimestamp) {
			return fmt.Errorf("AT_TIMESTAMP cannot be set here; use initialPositionInStreamExtended = <epoch seconds>")
		}
		warnTrimmedEnum(l, e)
		l.cfg.InitialPosition = InitialPosition(v)
		l.positionEntry = &e
		return nil
	}
	show := func(c *Config) string { return string(c.InitialPosition) }
	return kind{set: set, show: show, typ: enumType(string(PositionLatest), string(PositionTrimHorizon))}
}

func initialTimestamp() kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, 0, 253402300799) // up to 9999-12-31
		if err != nil {
			return fmt.Errorf("must be epoch seconds: %w", err)
		}
		l.timestamp = time.Unix(n, 0).UTC()
		l.timestampEntry = &e
		return nil
	}
	show := func(c *Config) string {
		if c.InitialPosition != PositionAtTimestamp {
			return ""
		}
		return string(PositionAtTimestamp) + " " + c.InitialTimestamp.UTC().Format(time.RFC3339)
	}
	return kind{set: set, show: show, typ: "epoch seconds"}
}

func cleanupLeases() kind {
	k := boolean(func(c *Config) *bool { return &c.CleanupLeasesUponShardCompletion })
	setBool := k.set
	k.set = func(l *loader, e Entry) error {
		if err := setBool(l, e); err != nil {
			return err
		}
		if !l.cfg.CleanupLeasesUponShardCompletion {
			l.warn(e, "false is honoured by multilangd: finished shards' leases are kept (Java silently keeps cleaning them up)")
		}
		return nil
	}
	return k
}

func bakeTime() kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, 0, math.MaxInt64/int64(time.Second))
		if err != nil {
			return err
		}
		c := min(max(n, 3600), 604800)
		if c != n {
			l.warn(e, fmt.Sprintf("clamped to %d seconds (allowed 3600..604800, as in Java)", c))
		}
		l.cfg.TableMigrationCompleteBakeTime = time.Duration(c) * time.Second
		return nil
	}
	show := func(c *Config) string {
		return strconv.FormatInt(int64(c.TableMigrationCompleteBakeTime/time.Second), 10)
	}
	return kind{set: set, show: show, typ: "seconds, clamped to 3600..604800"}
}

func dimensions() kind {
	set := func(l *loader, e Entry) error {
		d := splitDimensions(e.Value)
		if len(d) == 0 {
			return fmt.Errorf("no dimension names (e.g. ALL, or ShardId,WorkerIdentifier)")
		}
		l.cfg.MetricsEnabledDimensions = d
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return strings.Join(c.MetricsEnabledDimensions, ",") }, typ: "list"}
}

func retrievalMode() kind {
	set := func(l *loader, e Entry) error {
		v, err := parseEnumWarn(l, e, string(RetrievalFanout), string(RetrievalPolling), string(RetrievalDefault))
		if err != nil {
			return fmt.Errorf("must be one of (FANOUT, POLLING, DEFAULT)")
		}
		l.cfg.RetrievalMode = RetrievalMode(v)
		return nil
	}
	show := func(c *Config) string { return string(c.RetrievalMode) }
	return kind{set: set, show: show, typ: enumType(string(RetrievalFanout), string(RetrievalPolling), string(RetrievalDefault))}
}

func idleTime() kind {
	set := func(l *loader, e Entry) error {
		n, err := parseInt(e.Value, 0, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return err
		}
		if n < 200 {
			l.warn(e, "raised to the minimum of 200 ms (as in KCL 3.x)")
			n = 200
		}
		l.cfg.IdleTimeBetweenReads = time.Duration(n) * time.Millisecond
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return showMillis(c.IdleTimeBetweenReads) }, typ: "ms, raised to ≥ 200"}
}

func logFormat() kind {
	set := func(l *loader, e Entry) error {
		v := strings.ToLower(strings.TrimSpace(e.Value))
		if v != "console" && v != "json" {
			return fmt.Errorf("must be console or json")
		}
		l.cfg.LogFormat = v
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return c.LogFormat }, typ: enumType("console", "json")}
}

func listenAddress() kind {
	set := func(l *loader, e Entry) error {
		v := strings.TrimSpace(e.Value)
		if v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return fmt.Errorf("must be host:port or :port (empty = off)")
			}
		}
		l.cfg.MetricsListenAddress = v
		return nil
	}
	return kind{set: set, show: func(c *Config) string { return c.MetricsListenAddress }, typ: "`host:port`"}
}

func leaseTableBillingMode() kind {
	set := func(l *loader, e Entry) error {
		v, err := parseEnum(e.Value, BillingPayPerRequest, BillingProvisioned)
		if err != nil {
			return err
		}
		l.cfg.LeaseTableBillingProvisioned = v == BillingProvisioned
		return nil
	}
	show := func(c *Config) string {
		if c.LeaseTableBillingProvisioned {
			return BillingProvisioned
		}
		return BillingPayPerRequest
	}
	return kind{set: set, show: show, typ: enumType(BillingPayPerRequest, BillingProvisioned)}
}

func tags(f func(*Config) *map[string]string) kind {
	set := func(l *loader, e Entry) error {
		tags, skipped := parseTags(e.Value)
		for _, s := range skipped {
			l.warn(e, fmt.Sprintf("tag %q is not key=value and is skipped (as in Java)", s))
		}
		*f(l.cfg) = tags
		return nil
	}
	show := func(c *Config) string {
		if t := *f(c); len(t) > 0 {
			return fmt.Sprint(t)
		}
		return ""
	}
	return kind{set: set, show: show, typ: "`k=v,k=v`"}
}
