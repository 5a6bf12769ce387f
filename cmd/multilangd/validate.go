package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/multilangd/multilangd/properties"
)

// fanoutNote tells what enhanced fan-out will do at start-up: it may create
// an AWS resource and needs permissions that polling does not.
func fanoutNote(cfg *properties.Config) string {
	if cfg.Fanout.ConsumerARN != "" {
		return "enhanced fan-out (SubscribeToShard) with the configured consumer " + cfg.Fanout.ConsumerARN
	}
	name := cfg.Fanout.ConsumerName
	if name == "" {
		name = cfg.ApplicationName
	}
	return fmt.Sprintf("enhanced fan-out (SubscribeToShard): at start-up the daemon registers the stream consumer %q if it does not exist "+
		"(needs kinesis:DescribeStreamSummary, DescribeStreamConsumer, RegisterStreamConsumer, SubscribeToShard, and ListShards, GetShardIterator, GetRecords for shard ends); "+
		"set retrievalMode = POLLING to poll instead", name)
}

func (c *cli) newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [-p FILE] [FILE]",
		Short: "Load a .properties file, print the resolved configuration and every warning; exit 1 on errors",
		Long: `validate loads the properties file exactly as the daemon would, prints the
resolved configuration (secrets redacted) and every warning as
file:line: key: message, and exits with status 1 if there is any error,
including an executableName that does not resolve to an executable file from
the current working directory (the daemon resolves it from its own).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, fileWarning, err := c.resolveFile(args)
			if err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			if fileWarning != "" {
				fmt.Fprintln(c.stderr, "warning:", fileWarning)
			}
			if c.logConfig != "" {
				fmt.Fprintln(c.stderr, "warning:", logConfigWarning)
			}
			cfg, err := properties.Load(path)
			if err != nil {
				if cfg != nil {
					printWarnings(c.stdout, cfg.Warnings)
				}
				return &exitCodeError{code: exitError, err: configError(err)}
			}
			if err := printConfig(c.stdout, cfg); err != nil {
				return err
			}
			// The one start-up check that needs no AWS call (see preflight.go).
			if err := checkExecutable(cfg); err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			_, err = fmt.Fprintf(c.stdout, "\nOK: %s is valid (%d warning(s)).\n", cfg.Source, len(cfg.Warnings))
			return err
		},
	}
	c.addFileFlags(cmd)
	return cmd
}

// configError lists every problem of a failed Load on its own line.
func configError(err error) error {
	errs := properties.Errors(err)
	if len(errs) == 0 {
		return err
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = "  " + e.Error()
	}
	return fmt.Errorf("invalid configuration (%d error(s)):\n%s", len(errs), strings.Join(lines, "\n"))
}

func printWarnings(w io.Writer, ws []properties.Warning) {
	if len(ws) == 0 {
		return
	}
	fmt.Fprintf(w, "\nWarnings (%d):\n", len(ws))
	for _, x := range ws {
		fmt.Fprintln(w, "  "+x.String())
	}
}

// printConfig writes the resolved configuration as an aligned list and
// its warnings.
func printConfig(w io.Writer, cfg *properties.Config) error {
	settings := cfg.Settings()
	kw, vw := 0, 0
	for _, s := range settings {
		kw = max(kw, len(s.Key))
		vw = max(vw, min(len(s.Value), 40))
	}
	fmt.Fprintf(w, "Resolved configuration from %s\n", cfg.Source)
	section := ""
	for _, s := range settings {
		if s.Section != section {
			section = s.Section
			fmt.Fprintf(w, "\n[%s]\n", section)
		}
		origin := "default"
		switch {
		case s.Line > 0:
			origin = fmt.Sprintf("line %d", s.Line)
		case s.Key == "retrievalMode":
			origin = "DEFAULT: no polling key set"
		}
		fmt.Fprintf(w, "  %-*s  %-*s  (%s)\n", kw, s.Key, vw, s.Value, origin)
	}
	if cfg.RetrievalMode == properties.RetrievalFanout {
		fmt.Fprintf(w, "\nNote: %s\n", fanoutNote(cfg))
	}
	printWarnings(w, cfg.Warnings)
	return nil
}
