package properties

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// StreamConfig is one stream of a multi-stream application (the `streams`
// extension key; Java StreamConfig of a MultiStreamTracker). Exactly one of
// the three ways of naming the stream was used: a plain name, an ARN, or the
// serialised Java StreamIdentifier account:streamName:creationEpoch.
type StreamConfig struct {
	// Name is the stream name (also taken from an ARN or identifier).
	Name string
	// ARN is set when the stream was given as an ARN; stream calls then
	// address it by ARN (Java StreamIdentifier.multiStreamInstance(Arn, long)).
	ARN string
	// AccountID and CreationEpoch come from an ARN or identifier; when
	// unknown (0 / "") they are looked up with DescribeStreamSummary at
	// start-up, and the lease keys use them.
	AccountID     string
	CreationEpoch int64
	// InitialPosition is this stream's position for new leases; "" means
	// initialPositionInStream(Extended). With AT_TIMESTAMP, InitialTimestamp
	// is its time (Java InitialPositionInStreamExtended.newInitialPositionAtTimestamp).
	InitialPosition  InitialPosition
	InitialTimestamp time.Time
}

// Identifier is the serialised Java StreamIdentifier
// (account:streamName:creationEpoch), or "" while account or epoch are unknown.
func (s StreamConfig) Identifier() string {
	if s.AccountID == "" || s.CreationEpoch <= 0 {
		return ""
	}
	return s.AccountID + ":" + s.Name + ":" + strconv.FormatInt(s.CreationEpoch, 10)
}

// String is the stream as `validate` shows it.
func (s StreamConfig) String() string {
	v := s.Name
	switch {
	case s.ARN != "":
		v = s.ARN
	case s.Identifier() != "":
		v = s.Identifier()
	}
	if s.InitialPosition != "" {
		v += "=" + string(s.InitialPosition)
	}
	if s.InitialPosition == PositionAtTimestamp {
		v += ":" + strconv.FormatInt(s.InitialTimestamp.Unix(), 10)
	}
	return v
}

// Former-streams lease deletion (Java FormerStreamsLeasesDeletionStrategy
// StreamsLeasesDeletionType); PROVIDED_STREAMS_DEFERRED_DELETION needs code
// that lists the streams and has no properties form.
const (
	NoStreamsLeasesDeletion                    = "NO_STREAMS_LEASES_DELETION"
	FormerStreamsAutoDetectionDeferredDeletion = "FORMER_STREAMS_AUTO_DETECTION_DEFERRED_DELETION"
)

// streamIdentifierRE is Java StreamIdentifier.STREAM_IDENTIFIER_PATTERN.
var streamIdentifierRE = regexp.MustCompile(`^([0-9]+):([^:]+):([0-9]+)$`)

// streamNameRE is the Kinesis stream name pattern.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// ParseStreams parses the `streams` value: entries separated by commas,
// each `<stream>[=<LATEST|TRIM_HORIZON|AT_TIMESTAMP:<epoch seconds>>]`.
func ParseStreams(v string) ([]StreamConfig, error) {
	var out []StreamConfig
	seen := map[string]int{}
	for i, raw := range strings.Split(v, ",") {
		ent := strings.TrimSpace(raw)
		if ent == "" {
			continue
		}
		s, err := parseStream(ent)
		if err != nil {
			return nil, fmt.Errorf("stream %d (%q): %w", i+1, ent, err)
		}
		if j, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("stream %d (%q): stream %q is already listed as stream %d", i+1, ent, s.Name, j)
		}
		seen[s.Name] = i + 1
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no streams listed (remove the key for a single-stream application)")
	}
	return out, nil
}

func parseStream(ent string) (StreamConfig, error) {
	var s StreamConfig
	id, pos, hasPos := strings.Cut(ent, "=")
	id = strings.TrimSpace(id)
	if hasPos {
		if err := parseStreamPosition(&s, strings.TrimSpace(pos)); err != nil {
			return s, err
		}
	}
	switch {
	case strings.HasPrefix(id, "arn:"):
		m := streamARNRE.FindStringSubmatch(id)
		if m == nil {
			return s, fmt.Errorf("not a Kinesis stream ARN (arn:aws:kinesis:<region>:<12-digit account>:stream/<name>)")
		}
		s.ARN, s.AccountID, s.Name = id, m[2], m[3]
	case strings.Contains(id, ":"):
		m := streamIdentifierRE.FindStringSubmatch(id)
		if m == nil {
			return s, fmt.Errorf("not a stream identifier account:streamName:creationEpoch")
		}
		epoch, err := strconv.ParseInt(m[3], 10, 64)
		if err != nil || epoch <= 0 {
			return s, fmt.Errorf("creation epoch must be > 0 (Java StreamIdentifier.validateCreationEpoch)")
		}
		s.AccountID, s.Name, s.CreationEpoch = m[1], m[2], epoch
	default:
		s.Name = id
	}
	if !streamNameRE.MatchString(s.Name) {
		return s, fmt.Errorf("stream name %q is not 1-128 characters of a-z A-Z 0-9 _ . -", s.Name)
	}
	return s, nil
}

// parseStreamPosition parses LATEST, TRIM_HORIZON or
// AT_TIMESTAMP:<epoch seconds>.
func parseStreamPosition(s *StreamConfig, pos string) error {
	if ts, ok := strings.CutPrefix(strings.ToUpper(pos), string(PositionAtTimestamp)+":"); ok {
		n, err := parseInt(ts, 0, 253402300799) // up to 9999-12-31, as initialPositionInStreamExtended
		if err != nil {
			return fmt.Errorf("AT_TIMESTAMP needs epoch seconds (AT_TIMESTAMP:1700000000): %w", err)
		}
		s.InitialPosition, s.InitialTimestamp = PositionAtTimestamp, time.Unix(n, 0).UTC()
		return nil
	}
	p, err := parseEnum(pos, string(PositionLatest), string(PositionTrimHorizon))
	if err != nil {
		return fmt.Errorf("initial position must be LATEST, TRIM_HORIZON or AT_TIMESTAMP:<epoch seconds>")
	}
	s.InitialPosition = InitialPosition(p)
	return nil
}

func streamsKind() kind {
	set := func(l *loader, e Entry) error {
		ss, err := ParseStreams(e.Value)
		if err != nil {
			return err
		}
		l.cfg.Streams = ss
		return nil
	}
	show := func(c *Config) string {
		parts := make([]string, len(c.Streams))
		for i, s := range c.Streams {
			parts[i] = s.String()
		}
		return strings.Join(parts, ", ")
	}
	return kind{set: set, show: show, typ: "`stream[=position], …`"}
}

// MultiStream reports whether the `streams` key makes this a multi-stream
// application.
func (c *Config) MultiStream() bool { return len(c.Streams) > 0 }

// PositionOf is the initial position of new leases of s.
func (c *Config) PositionOf(s StreamConfig) InitialPosition {
	if s.InitialPosition != "" {
		return s.InitialPosition
	}
	return c.InitialPosition
}
