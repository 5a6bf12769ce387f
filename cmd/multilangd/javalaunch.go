package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Java launch compatibility (docs/configuration.md#java-launch-arguments).
//
// The client libraries' launchers build the Java command line themselves:
// aws-kcl's kcl-bootstrap spawns, and amazon_kclpy_helper.py --print_command
// prints,
//
//	<java> -cp <jars> software.amazon.kinesis.multilang.MultiLangDaemon --properties-file F [--log-configuration L]
//
// so pointing their --java at multilangd hands it the JVM's arguments too.
// stripJavaLaunch removes them before cobra parses the daemon's own
// arguments (MultiLangDaemon.main's JCommander arguments).

// daemonMainClasses are the Java daemon's main classes: KCL 2.x/3.x and 1.x.
var daemonMainClasses = []string{
	"software.amazon.kinesis.multilang.MultiLangDaemon",
	"com.amazonaws.services.kinesis.multilang.MultiLangDaemon",
}

// jvmOptionsWithValue are the java launcher options whose value is the next
// argument (`java --help`). -p is the module path only before a main class;
// without one it is the daemon's --properties-file.
var jvmOptionsWithValue = map[string]bool{
	"-cp": true, "-classpath": true, "--class-path": true,
	"-p": true, "--module-path": true, "--upgrade-module-path": true,
	"--add-modules": true, "--limit-modules": true, "--add-exports": true,
	"--add-opens": true, "--add-reads": true, "--patch-module": true,
	"--enable-native-access": true,
}

// jvmFlagPrefixes are JVM arguments recognised at the start of a command
// line without a main class: system properties, -X/-XX options, agents and
// assertion switches. None collides with a multilangd flag.
var jvmFlagPrefixes = []string{
	"-D", "-X", "-javaagent:", "-agentlib:", "-agentpath:", "-verbose:",
	"-ea", "-da", "-esa", "-dsa", "-enableassertions", "-disableassertions",
	"-enablesystemassertions", "-disablesystemassertions",
	"--add-opens=", "--add-exports=", "--add-modules=", "--enable-native-access=",
	"--class-path=", "--enable-preview", "--illegal-access=",
}

// jvmFlags are whole-word JVM flags.
var jvmFlags = map[string]bool{"-server": true, "-client": true, "-d32": true, "-d64": true, "-verbose": true, "-showversion": true}

// systemPropertyEnv maps the JVM system properties that the Java daemon's
// AWS SDK reads (SdkSystemSetting, ProfileFileSystemSetting; a system
// property beats the environment variable there) to the environment
// variables the Go SDK reads.
var systemPropertyEnv = map[string]string{
	"aws.region":                "AWS_REGION",
	"aws.profile":               "AWS_PROFILE",
	"aws.configFile":            "AWS_CONFIG_FILE",
	"aws.sharedCredentialsFile": "AWS_SHARED_CREDENTIALS_FILE",
	"aws.accessKeyId":           "AWS_ACCESS_KEY_ID",
	"aws.secretAccessKey":       "AWS_SECRET_ACCESS_KEY",
	"aws.sessionToken":          "AWS_SESSION_TOKEN",
	"aws.webIdentityTokenFile":  "AWS_WEB_IDENTITY_TOKEN_FILE",
	"aws.roleArn":               "AWS_ROLE_ARN",
	"aws.roleSessionName":       "AWS_ROLE_SESSION_NAME",
}

// logbackConfigProperty is logback's system property naming its XML file;
// multilangd treats it like -l/--log-configuration.
const logbackConfigProperty = "logback.configurationFile"

// envSetting is one environment variable set from a system property.
type envSetting struct{ property, name, value string }

// javaLaunch is what stripJavaLaunch took off the command line.
type javaLaunch struct {
	// ignored are the JVM arguments and the main class, as given, except
	// that system properties appear as -Dkey (values may be secrets) and
	// honoured ones are not listed.
	ignored []string
	// env are the honoured system properties, in command-line order.
	env []envSetting
	// logConfig is the value of -Dlogback.configurationFile.
	logConfig string
	// classpath is the -cp/-classpath/--class-path value, split.
	classpath []string
}

func (l javaLaunch) empty() bool {
	return len(l.ignored) == 0 && len(l.env) == 0 && l.logConfig == ""
}

// applied describes the honoured system properties for the log line.
func (l javaLaunch) applied() []string {
	out := make([]string, 0, len(l.env)+1)
	for _, e := range l.env {
		out = append(out, "-D"+e.property+" as "+e.name)
	}
	if l.logConfig != "" {
		out = append(out, "-D"+logbackConfigProperty+" as --log-configuration")
	}
	return out
}

// stripJavaLaunch splits args into the JVM launcher's arguments and the
// daemon's. With a main class, everything before it must be JVM options;
// without one, only a leading run of recognisable JVM arguments is taken.
func stripJavaLaunch(args []string) ([]string, javaLaunch, error) {
	var l javaLaunch
	main := slices.IndexFunc(args, func(a string) bool { return slices.Contains(daemonMainClasses, a) })
	end := main
	if main < 0 {
		end = leadingJVMArgs(args)
	}
	for i := 0; i < end; i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "-D"):
			l.addSystemProperty(a[2:])
			continue
		case jvmOptionsWithValue[a] && (main >= 0 || a != "-p"):
			if i+1 >= end {
				return nil, l, fmt.Errorf("JVM option %s needs a value", a)
			}
			l.ignored = append(l.ignored, a, l.addValue(a, args[i+1]))
			i++
			continue
		case strings.HasPrefix(a, "--class-path="):
			a = "--class-path=" + l.addValue("--class-path", strings.TrimPrefix(a, "--class-path="))
		case !strings.HasPrefix(a, "-"):
			return nil, l, fmt.Errorf("unexpected argument %q before the main class %s: only JVM options may come before it", a, args[main])
		}
		l.ignored = append(l.ignored, a)
	}
	if main < 0 {
		return args[end:], l, nil
	}
	l.ignored = append(l.ignored, args[main])
	return args[main+1:], l, nil
}

// leadingJVMArgs returns the length of the run of JVM arguments at the
// start of args (a value-taking option counts with its value).
func leadingJVMArgs(args []string) int {
	i := 0
	for i < len(args) {
		a := args[i]
		switch {
		case jvmOptionsWithValue[a] && a != "-p":
			if i+1 >= len(args) {
				return len(args) // stripJavaLaunch reports the missing value
			}
			i += 2
		case isJVMFlag(a):
			i++
		default:
			return i
		}
	}
	return i
}

func isJVMFlag(a string) bool {
	if jvmFlags[a] {
		return true
	}
	for _, p := range jvmFlagPrefixes {
		if strings.HasPrefix(a, p) {
			return true
		}
	}
	return false
}

// addValue records a value-taking JVM option and returns the value as
// logged: a classpath of several entries as its entry count (launchers put
// dozens of jars there).
func (l *javaLaunch) addValue(option, value string) string {
	if option != "-cp" && option != "-classpath" && option != "--class-path" {
		return value
	}
	entries := filepath.SplitList(value)
	l.classpath = append(l.classpath, entries...)
	if len(entries) > 1 {
		return fmt.Sprintf("<%d classpath entries>", len(entries))
	}
	return value
}

// findOnClasspath resolves a relative properties file name the way
// MultiLangDaemonConfig.buildProperties does: as a classpath resource first
// (here: a file under a classpath directory, in classpath order), then as a
// filesystem path. KCL 1.x launchers pass only the file's base name and put
// its directory on the classpath. Jar entries are not searched.
func (l javaLaunch) findOnClasspath(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	for _, dir := range l.classpath {
		if dir == "" || strings.HasSuffix(dir, "*") {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return name
}

// addSystemProperty records -Dkey[=value].
func (l *javaLaunch) addSystemProperty(kv string) {
	key, value, _ := strings.Cut(kv, "=")
	switch name, ok := systemPropertyEnv[key]; {
	case ok:
		l.env = append(l.env, envSetting{property: key, name: name, value: value})
	case key == logbackConfigProperty:
		l.logConfig = value
	default:
		l.ignored = append(l.ignored, "-D"+key)
	}
}
