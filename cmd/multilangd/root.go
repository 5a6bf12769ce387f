package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/internal/logging"
	"github.com/multilangd/multilangd/properties"
)

// Exit codes (docs/operations.md "Signals and exit codes": CLI, properties
// and validation errors exit 1).
const (
	exitOK    = 0
	exitError = 1
)

// cli holds the flags shared by the root command and its subcommands and the
// process environment, so tests can run commands in-process.
type cli struct {
	propertiesFile string
	logConfig      string
	logLevel       string
	logFormat      string

	// launch holds the Java launcher arguments stripped before cobra.
	launch javaLaunch

	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// setenv applies honoured JVM system properties (os.Setenv; nil in
	// tests that do not want the process environment changed).
	setenv func(key, value string) error
	// signals, when non-nil, replaces OS signal delivery (tests).
	signals chan os.Signal
	// daemon runs the worker; runDaemon unless a test replaces it.
	daemon func(ctx context.Context, cfg *properties.Config, log *zap.Logger) error
}

// exitCodeError carries a specific exit code through cobra.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// run executes the command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, setenv: os.Setenv, daemon: runDaemon}
	return c.execute(args)
}

func (c *cli) execute(args []string) int {
	args, launch, err := stripJavaLaunch(args)
	if err != nil {
		fmt.Fprintln(c.stderr, "multilangd:", err)
		return exitError
	}
	c.launch = launch
	for _, e := range launch.env {
		if c.setenv == nil {
			continue
		}
		if err := c.setenv(e.name, e.value); err != nil {
			fmt.Fprintf(c.stderr, "multilangd: -D%s: setting %s: %v\n", e.property, e.name, err)
			return exitError
		}
	}
	root := c.newRootCmd()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	err = root.Execute()
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil && ec.err.Error() != "" {
			fmt.Fprintln(c.stderr, "multilangd:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(c.stderr, "multilangd:", err)
	return exitError
}

func (c *cli) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "multilangd [--properties-file|-p FILE] [--log-configuration|-l FILE] [FILE]",
		Short: "KCL MultiLangDaemon replacement: run record processors for a Kinesis stream",
		Long: `multilangd is a drop-in replacement for the Java KCL MultiLangDaemon.

It reads the same .properties file (given with -p/--properties-file or as the
single positional argument; -p wins), coordinates with other workers through the
same DynamoDB lease table and runs the configured executableName once per shard.

Log level and format come from --log-level/--log-format, then the environment
(MULTILANGD_LOG_LEVEL, MULTILANGD_LOG_FORMAT), then the logLevel/logFormat
properties. -l/--log-configuration (a logback XML file) is accepted for
compatibility but cannot apply.`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		RunE:          c.runRoot,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	c.addFileFlags(root)
	pf := root.PersistentFlags()
	pf.StringVar(&c.logLevel, "log-level", "", "log level: debug, info, warn, error (overrides "+logging.EnvLevel+" and the logLevel property)")
	pf.StringVar(&c.logFormat, "log-format", "", "log format: console or json (overrides "+logging.EnvFormat+" and the logFormat property)")
	root.AddCommand(c.newValidateCmd(), newVersionCmd(), newLeasesCmd(), newPutCmd(), newTableCmd(), newIAMPolicyCmd())
	return root
}

// addFileFlags adds the Java daemon's -p and -l flags to cmd.
func (c *cli) addFileFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&c.propertiesFile, "properties-file", "p", "", "KCL .properties file (takes precedence over the positional argument)")
	f.StringVarP(&c.logConfig, "log-configuration", "l", "", "logback XML file (accepted for compatibility; ignored with a warning)")
}

// resolveFile applies the Java precedence between -p and the positional
// argument, then looks the file up on the classpath of a Java launch
// command line. The returned warning is non-empty when both were given.
func (c *cli) resolveFile(args []string) (path, warning string, err error) {
	path, warning, err = c.fileArgument(args)
	return c.launch.findOnClasspath(path), warning, err
}

// fileArgument picks the properties file argument.
func (c *cli) fileArgument(args []string) (path, warning string, err error) {
	if len(args) > 1 {
		return "", "", fmt.Errorf("expected a single argument (the properties file), but found multiple arguments: %q", args)
	}
	switch {
	case c.propertiesFile != "" && len(args) == 1:
		return c.propertiesFile, fmt.Sprintf("both --properties-file %q and positional %q given; using --properties-file", c.propertiesFile, args[0]), nil
	case c.propertiesFile != "":
		return c.propertiesFile, "", nil
	case len(args) == 1:
		return args[0], "", nil
	default:
		return "", "", errors.New("no properties file given: use --properties-file FILE (or -p FILE, or a single positional FILE)")
	}
}

// loadConfig resolves the file and loads it. Errors are returned as one
// exitCodeError listing every problem.
func (c *cli) loadConfig(args []string) (*properties.Config, string, error) {
	path, warning, err := c.resolveFile(args)
	if err != nil {
		return nil, "", &exitCodeError{code: exitError, err: err}
	}
	cfg, err := properties.Load(path)
	if err != nil {
		if cfg != nil {
			for _, w := range cfg.Warnings {
				fmt.Fprintln(c.stderr, "warning:", w.String())
			}
		}
		return nil, warning, &exitCodeError{code: exitError, err: configError(err)}
	}
	return cfg, warning, nil
}

// newLogger builds the logger: flag beats environment beats property.
func (c *cli) newLogger(cfg *properties.Config) (*zap.Logger, error) {
	var propLevel, propFormat string
	if cfg != nil {
		propLevel, propFormat = cfg.LogLevel, cfg.LogFormat
	}
	def := properties.Defaults()
	level := logging.Resolve(c.logLevel, c.getenv(logging.EnvLevel), propLevel, def.LogLevel)
	format := logging.Resolve(c.logFormat, c.getenv(logging.EnvFormat), propFormat, def.LogFormat)
	log, err := logging.NewTo(level, format, writeSyncer{c.stderr})
	if err != nil {
		return nil, &exitCodeError{code: exitError, err: err}
	}
	return log, nil
}

// logConfigWarning is logged once when -l is given.
const logConfigWarning = "--log-configuration (logback XML) cannot apply to multilangd and is ignored; " +
	"set the log level and format with logLevel/logFormat in the properties file, " +
	"MULTILANGD_LOG_LEVEL/MULTILANGD_LOG_FORMAT, or --log-level/--log-format"

// javaLaunchNotice is logged once when the command line carried the Java
// launcher's arguments (see javalaunch.go).
const javaLaunchNotice = "Java launcher arguments ignored (multilangd is not a JVM: no classpath, JVM flags or main class); " +
	"system properties the Java daemon's AWS SDK reads are honoured as environment variables"

// removedCleanupEnv was read by multilangd before the lease-cleanup
// intervals became keys; a user still setting it is told which keys replace it.
const removedCleanupEnv = "MULTILANGD_LEASE_CLEANUP_INTERVAL"

const removedCleanupEnvWarning = removedCleanupEnv + " is no longer read; set leaseCleanupIntervalMillis, " +
	"completedLeaseCleanupIntervalMillis and garbageLeaseCleanupIntervalMillis in the properties file instead"

func (c *cli) runRoot(cmd *cobra.Command, args []string) error {
	cfg, fileWarning, err := c.loadConfig(args)
	if err != nil {
		return err
	}
	log, err := c.newLogger(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if fileWarning != "" {
		log.Warn(fileWarning)
	}
	if !c.launch.empty() {
		log.Info(javaLaunchNotice, zap.Strings("ignored", c.launch.ignored), zap.Strings("honoured", c.launch.applied()))
	}
	if c.logConfig == "" {
		c.logConfig = c.launch.logConfig
	}
	if c.logConfig != "" {
		log.Warn(logConfigWarning, zap.String("logConfiguration", c.logConfig))
	}
	if v := c.getenv(removedCleanupEnv); v != "" {
		log.Warn(removedCleanupEnvWarning, zap.String(removedCleanupEnv, v))
	}
	for _, w := range cfg.Warnings {
		log.Warn(w.Message, zap.String("file", w.File), zap.Int("line", w.Line), zap.String("key", w.Key))
	}
	log.Info("configuration loaded",
		zap.String("file", cfg.Source), zap.String("applicationName", cfg.ApplicationName),
		zap.String("stream", cfg.StreamName), zap.String("region", cfg.RegionName),
		zap.String("workerId", cfg.WorkerID), zap.String("retrievalMode", string(cfg.RetrievalMode)),
		zap.String("executableName", cfg.ExecutableName), zap.String("version", versionString()))

	ctx, stop := c.signalContext(cmd.Context(), log)
	defer stop()
	if err := c.daemon(ctx, cfg, log); err != nil {
		log.Error("daemon stopped with an error", zap.Error(err))
		return &exitCodeError{code: exitError, err: err}
	}
	return nil
}

// signalRepeatWindow: a stop signal arriving this soon after the first is
// the same request delivered twice (a Ctrl-C reaches the whole foreground
// process group, and a launcher such as the npm package's forwards it too),
// not the user's "exit at once".
const signalRepeatWindow = time.Second

// signalContext returns a context cancelled by the first SIGTERM or SIGINT;
// a second signal, after signalRepeatWindow, exits the process at once
// (128+signal number). stop releases the signal handler and waits for its
// goroutine.
func (c *cli) signalContext(parent context.Context, log *zap.Logger) (context.Context, func()) {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	sigs := c.signals
	if sigs == nil {
		sigs = make(chan os.Signal, 2)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-sigs:
			log.Info("signal received, shutting down gracefully (send it again to exit at once)", zap.Stringer("signal", s))
			cancel()
		case <-quit:
			return
		}
		first := time.Now()
		for {
			select {
			case s := <-sigs:
				if time.Since(first) < signalRepeatWindow {
					log.Info("repeated signal ignored (sent to the process group and forwarded by a launcher?); send it again to exit at once", zap.Stringer("signal", s))
					continue
				}
				log.Warn("second signal received, exiting now", zap.Stringer("signal", s))
				_ = log.Sync()
				code := 1
				if ss, ok := s.(syscall.Signal); ok {
					code = 128 + int(ss)
				}
				os.Exit(code)
			case <-quit:
				return
			}
		}
	}()
	return ctx, func() {
		if c.signals == nil {
			signal.Stop(sigs)
		}
		close(quit)
		<-done
		cancel()
	}
}

// writeSyncer adapts an io.Writer to zapcore.WriteSyncer.
type writeSyncer struct{ io.Writer }

func (w writeSyncer) Sync() error {
	if f, ok := w.Writer.(*os.File); ok {
		_ = f.Sync() // stderr may be a pipe or terminal: Sync errors mean nothing there
	}
	return nil
}
