package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newLeasesCmd returns the `leases` subcommand. Stub: engineer F replaces this
// file wholesale.
func newLeasesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "leases",
		Short: "Inspect the lease table (not yet available)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("leases: not yet available")
		},
	}
}
