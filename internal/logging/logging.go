// Package logging builds the daemon's zap logger: a level and a format
// (console or json), always writing to stderr so a child's protocol traffic
// and the daemon's own stdout never mix with log lines.
package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats accepted by New.
const (
	FormatConsole = "console"
	FormatJSON    = "json"
)

// Environment variables that override the logLevel / logFormat properties.
const (
	EnvLevel  = "MULTILANGD_LOG_LEVEL"
	EnvFormat = "MULTILANGD_LOG_FORMAT"
)

// ParseLevel parses a level name (debug, info, warn, error, dpanic, panic,
// fatal; case-insensitive; "warning" is accepted for warn).
func ParseLevel(s string) (zapcore.Level, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "warning" {
		v = "warn"
	}
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(v)); err != nil || v == "" {
		return l, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// ParseFormat validates a format name (console or json, case-insensitive).
func ParseFormat(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case FormatConsole, FormatJSON:
		return v, nil
	default:
		return "", fmt.Errorf("unknown log format %q (want console or json)", s)
	}
}

// New returns a logger writing to stderr at the given level and format.
func New(level, format string) (*zap.Logger, error) {
	return NewTo(level, format, zapcore.Lock(os.Stderr))
}

// NewTo is New with an explicit sink (tests).
func NewTo(level, format string, sink zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	f, err := ParseFormat(format)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if f == FormatJSON {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder // "20s", not a bare 20
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, sink, lvl)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.DPanicLevel), zap.ErrorOutput(sink)), nil
}

// Resolve picks the effective value: flag beats environment beats property
// beats def. Empty strings mean "not given".
func Resolve(flag, env, property, def string) string {
	for _, v := range []string{flag, env, property} {
		if v != "" {
			return v
		}
	}
	return def
}
