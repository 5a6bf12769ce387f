package logging

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want zapcore.Level
		ok   bool
	}{
		{"debug", zapcore.DebugLevel, true},
		{"INFO", zapcore.InfoLevel, true},
		{" warn ", zapcore.WarnLevel, true},
		{"warning", zapcore.WarnLevel, true},
		{"error", zapcore.ErrorLevel, true},
		{"", 0, false},
		{"loud", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]string{"console": "console", "JSON": "json", "xml": "", "": ""} {
		got, err := ParseFormat(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ flag, env, prop, def, want string }{
		{"", "", "", "info", "info"},
		{"", "", "debug", "info", "debug"},
		{"", "warn", "debug", "info", "warn"},
		{"error", "warn", "debug", "info", "error"},
	}
	for _, tt := range tests {
		if got := Resolve(tt.flag, tt.env, tt.prop, tt.def); got != tt.want {
			t.Errorf("Resolve(%q,%q,%q,%q) = %q", tt.flag, tt.env, tt.prop, tt.def, got)
		}
	}
}

func TestNewTo(t *testing.T) {
	tests := []struct {
		level, format string
		want, notWant string
	}{
		{"info", "json", `"msg":"shown"`, "hidden"},
		{"debug", "console", "INFO", `"msg"`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log, err := NewTo(tt.level, tt.format, zapcore.AddSync(&buf))
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("hidden-unless-debug")
		log.Info("shown")
		_ = log.Sync()
		out := buf.String()
		if !strings.Contains(out, tt.want) || (tt.level == "info" && strings.Contains(out, tt.notWant)) || (tt.format == "console" && strings.Contains(out, tt.notWant)) {
			t.Errorf("%s/%s output:\n%s", tt.level, tt.format, out)
		}
	}
	if _, err := New("bad", "json"); err == nil {
		t.Error("New accepted a bad level")
	}
	if _, err := New("info", "xml"); err == nil {
		t.Error("New accepted a bad format")
	}
}

func TestConsoleDurationsAndStacktraces(t *testing.T) {
	tests := []struct {
		name          string
		log           func(*zap.Logger)
		want, notWant string
	}{
		{"duration is a Go duration string", func(l *zap.Logger) { l.Info("stop", zap.Duration("deadline", 20*time.Second)) }, `"deadline": "20s"`, `"deadline": 20}`},
		{"ERROR has no stack trace", func(l *zap.Logger) { l.Error("failed") }, "failed", "testing.tRunner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewTo("info", FormatConsole, zapcore.AddSync(&buf))
			if err != nil {
				t.Fatal(err)
			}
			tt.log(log)
			out := buf.String()
			if !strings.Contains(out, tt.want) || strings.Contains(out, tt.notWant) {
				t.Errorf("output %q: want %q, not %q", out, tt.want, tt.notWant)
			}
		})
	}
	// DPanic and above keep their stack trace (production: DPanic does not panic).
	var buf bytes.Buffer
	log, _ := NewTo("info", FormatConsole, zapcore.AddSync(&buf))
	log.DPanic("bug")
	if !strings.Contains(buf.String(), "testing.tRunner") {
		t.Errorf("DPanic without stack trace: %q", buf.String())
	}
}
