package logging

import (
	"bytes"
	"strings"
	"testing"

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
