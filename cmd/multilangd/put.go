package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newPutCmd returns the `put` subcommand. Stub: engineer E replaces this file
// wholesale.
func newPutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "put",
		Short: "Put test records into a stream (not yet available)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("put: not yet available")
		},
	}
}
