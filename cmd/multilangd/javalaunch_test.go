package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestStripJavaLaunch(t *testing.T) {
	const main2 = "software.amazon.kinesis.multilang.MultiLangDaemon"
	const main1 = "com.amazonaws.services.kinesis.multilang.MultiLangDaemon"
	tests := []struct {
		name        string
		args        []string
		wantArgs    []string
		wantIgnored []string
		wantEnv     []envSetting
		wantLog     string
		wantCP      []string
		wantErr     string
	}{
		{name: "plain daemon arguments untouched", args: []string{"-p", "a.properties", "-l", "x.xml"},
			wantArgs: []string{"-p", "a.properties", "-l", "x.xml"}},
		{name: "subcommand untouched", args: []string{"validate", "-p", "a"}, wantArgs: []string{"validate", "-p", "a"}},
		{name: "kcl-bootstrap shape", args: []string{"-cp", "/j/a.jar:/j/b.jar:/w:/w/conf", main2, "--properties-file", "conf/app.properties"},
			wantArgs: []string{"--properties-file", "conf/app.properties"}, wantIgnored: []string{"-cp", "<4 classpath entries>", main2},
			wantCP: []string{"/j/a.jar", "/j/b.jar", "/w", "/w/conf"}},
		{name: "KCL 1.x main class, positional file", args: []string{"-classpath", "/j/*", main1, "app.properties"},
			wantArgs: []string{"app.properties"}, wantIgnored: []string{"-classpath", "/j/*", main1}, wantCP: []string{"/j/*"}},
		{name: "JVM flags and system properties", args: []string{"-server", "-Xmx512m", "-XX:+UseG1GC", "-Dfoo.bar=1", "-Daws.region=eu-west-1",
			"-Daws.secretAccessKey=s3cret", "-Dlogback.configurationFile=/etc/lb.xml", "--class-path=/j", main2, "-p", "x"},
			wantArgs:    []string{"-p", "x"},
			wantIgnored: []string{"-server", "-Xmx512m", "-XX:+UseG1GC", "-Dfoo.bar", "--class-path=/j", main2},
			wantEnv:     []envSetting{{"aws.region", "AWS_REGION", "eu-west-1"}, {"aws.secretAccessKey", "AWS_SECRET_ACCESS_KEY", "s3cret"}},
			wantLog:     "/etc/lb.xml", wantCP: []string{"/j"}},
		{name: "module path -p before the main class is the JVM's", args: []string{"-p", "/mods", "--add-opens", "java.base/java.lang=ALL-UNNAMED", main2, "-p", "app"},
			wantArgs: []string{"-p", "app"}, wantIgnored: []string{"-p", "/mods", "--add-opens", "java.base/java.lang=ALL-UNNAMED", main2}},
		{name: "no main class: leading JVM arguments only", args: []string{"-cp", "/j", "-Xms64m", "-p", "app", "-Dlater=1"},
			wantArgs: []string{"-p", "app", "-Dlater=1"}, wantIgnored: []string{"-cp", "/j", "-Xms64m"}, wantCP: []string{"/j"}},
		{name: "no main class: -p stays the daemon's", args: []string{"-Xmx1g", "-p", "app"},
			wantArgs: []string{"-p", "app"}, wantIgnored: []string{"-Xmx1g"}},
		{name: "-cp without a value", args: []string{"-cp"}, wantErr: "-cp needs a value"},
		{name: "-cp value missing before the main class", args: []string{"-cp", main2, "-p", "x"}, wantErr: "-cp needs a value"},
		{name: "daemon argument before the main class", args: []string{"app.properties", main2}, wantErr: `unexpected argument "app.properties" before the main class`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, l, err := stripJavaLaunch(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(args, tt.wantArgs) || !reflect.DeepEqual(l.ignored, tt.wantIgnored) ||
				!reflect.DeepEqual(l.env, tt.wantEnv) || l.logConfig != tt.wantLog || !reflect.DeepEqual(l.classpath, tt.wantCP) {
				t.Fatalf("got args %q ignored %q env %v log %q cp %q", args, l.ignored, l.env, l.logConfig, l.classpath)
			}
		})
	}
}

// kclpyHelperCommand is what amazon_kclpy 3.x's
//
//	samples/amazon_kclpy_helper.py --print_command --java /usr/local/bin/multilangd --properties app.properties
//
// prints in /srv/app with amazon_kclpy installed in /srv/app/.venv: the
// helper's format "{java} -cp {cp} {daemon} {props} {log_config}" with the
// jar glob, then the properties file's directory, on the classpath, and a
// trailing space for the empty log_config. Launch scripts run it through
// the shell, which splits it on blanks.
const kclpyHelperCommand = "/usr/local/bin/multilangd -cp " +
	"/srv/app/.venv/lib/python3.11/site-packages/amazon_kclpy/jars/amazon-kinesis-client-multilang-3.1.3.jar:" +
	"/srv/app/.venv/lib/python3.11/site-packages/amazon_kclpy/jars/amazon-kinesis-client-3.1.3.jar:" +
	"/srv/app/.venv/lib/python3.11/site-packages/amazon_kclpy/jars/kinesis-2.33.0.jar:" +
	"/srv/app/.venv/lib/python3.11/site-packages/amazon_kclpy/jars/dynamodb-2.33.0.jar:" +
	"/srv/app/.venv/lib/python3.11/site-packages/amazon_kclpy/jars/logback-classic-1.3.15.jar:" +
	"/srv/app " +
	"software.amazon.kinesis.multilang.MultiLangDaemon --properties-file app.properties "

// kclpyHelperCommandLog is the same with --log-configuration logback.xml
// (the helper's -l), which adds "--log-configuration logback.xml".
const kclpyHelperCommandLog = "/usr/local/bin/multilangd -cp /srv/app/.venv/lib/python3.11/site-packages/amazon_kclpy/jars/amazon-kinesis-client-multilang-3.1.3.jar:/srv/app " +
	"software.amazon.kinesis.multilang.MultiLangDaemon --properties-file app.properties --log-configuration logback.xml"

// kclpy1HelperCommand is what the amazon_kclpy 1.x helper printed:
// "{java} -cp {cp} {daemon} {props}" with the 1.x main class and only the
// properties file's base name, which the JVM found on the classpath.
const kclpy1HelperCommand = "/usr/local/bin/multilangd -cp " +
	"/srv/app/.venv/lib/python2.7/site-packages/amazon_kclpy/jars/amazon-kinesis-client-1.9.3.jar:" +
	"/srv/app/.venv/lib/python2.7/site-packages/amazon_kclpy/jars/aws-java-sdk-core-1.11.437.jar:" +
	"%s com.amazonaws.services.kinesis.multilang.MultiLangDaemon app.properties"

func TestKclpyHelperCommandLines(t *testing.T) {
	appDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(appDir, "app.properties"), []byte(validProps), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	tests := []struct {
		name    string
		command string
		dir     string
		wantLog bool
	}{
		{"3.x --print_command", kclpyHelperCommand, appDir, false},
		{"3.x --print_command with -l", kclpyHelperCommandLog, appDir, true},
		// The 1.x file name is relative to nothing but the classpath.
		{"1.x --print_command, run elsewhere", strings.Replace(kclpy1HelperCommand, "%s", appDir, 1), elsewhere, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(tt.dir)
			words := strings.Fields(tt.command) // the shell's word splitting
			h := &harness{}
			if code := h.run(words[1:]...); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, h.stderr.String())
			}
			if h.gotCfg == nil || h.gotCfg.ApplicationName != "app" {
				t.Fatalf("daemon got %+v", h.gotCfg)
			}
			out := h.stderr.String()
			if n := strings.Count(out, "Java launcher arguments ignored"); n != 1 {
				t.Fatalf("launcher notice logged %d times, want 1:\n%s", n, out)
			}
			if !strings.Contains(out, "INFO") || !strings.Contains(out, "multilang.MultiLangDaemon") {
				t.Fatalf("notice is not an INFO line naming the main class:\n%s", out)
			}
			if got := strings.Contains(out, "cannot apply to multilangd"); got != tt.wantLog {
				t.Fatalf("log-configuration warning = %v, want %v:\n%s", got, tt.wantLog, out)
			}
		})
	}
}

func TestJavaSystemPropertiesHonoured(t *testing.T) {
	good := writeFile(t, "good.properties", validProps)
	set := map[string]string{}
	h := &harness{}
	h.setenv = func(k, v string) error { set[k] = v; return nil }
	code := h.run("-Daws.region=eu-west-1", "-Daws.profile=kcl", "-Daws.secretAccessKey=s3cret", "-Duser.timezone=UTC",
		"-Dlogback.configurationFile=/etc/logback.xml", "-Xmx1g", "software.amazon.kinesis.multilang.MultiLangDaemon", "-p", good)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	want := map[string]string{"AWS_REGION": "eu-west-1", "AWS_PROFILE": "kcl", "AWS_SECRET_ACCESS_KEY": "s3cret"}
	if !reflect.DeepEqual(set, want) {
		t.Fatalf("environment set %v, want %v", set, want)
	}
	out := h.stderr.String()
	for _, w := range []string{"-Daws.region as AWS_REGION", "-Duser.timezone", "-Xmx1g", "cannot apply to multilangd", "/etc/logback.xml"} {
		if !strings.Contains(out, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "UTC") {
		t.Errorf("a system property value was logged:\n%s", out)
	}
}

func TestJavaLaunchErrorExits1(t *testing.T) {
	h := &harness{}
	if code := h.run("-cp"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(h.stderr.String(), "JVM option -cp needs a value") {
		t.Fatalf("stderr: %s", h.stderr.String())
	}
}
