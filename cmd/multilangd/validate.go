package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [-p FILE] [FILE]",
		Short: "Load a .properties file, print the resolved configuration and every warning; exit 1 on errors",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := c.loadConfig(args)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "%+v\n", cfg)
			return err
		},
	}
	c.addFileFlags(cmd)
	return cmd
}
