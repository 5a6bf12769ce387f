package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/multilangd/multilangd/iac"
	"github.com/multilangd/multilangd/properties"
)

// iacFlags are the flags of `table schema` and `iam-policy`.
type iacFlags struct {
	file    string
	kcl     string
	format  string
	account string
}

func (f *iacFlags) load(args []string) (*properties.Config, iac.KCL, error) {
	path := f.file
	if path == "" && len(args) == 1 {
		path = args[0]
	}
	if path == "" {
		return nil, 0, errNoPropertiesFile
	}
	kcl, err := iac.ParseKCL(f.kcl)
	if err != nil {
		return nil, 0, err
	}
	cfg, err := properties.Load(path)
	if err != nil {
		return nil, 0, configError(err)
	}
	return cfg, kcl, nil
}

// newTableCmd returns `table` with its `schema` subcommand.
func newTableCmd() *cobra.Command {
	table := &cobra.Command{Use: "table", Short: "Lease-table tools (schema for CloudFormation and Terraform)"}
	var f iacFlags
	schema := &cobra.Command{
		Use:   "schema [-p FILE | FILE] [--kcl 2|3] [--format both|cloudformation|terraform]",
		Short: "Print the lease table (and KCL 3.x companions) as CloudFormation and Terraform resources",
		Long: `schema prints the DynamoDB tables the configuration needs, exactly as the
daemon would create them (name, key, billing mode and capacity, deletion
protection, PITR, tags), as a CloudFormation Resources fragment and as
Terraform aws_dynamodb_table resources. Provision them yourself and set
leaseTableCreate = never so the daemon never calls CreateTable.

--kcl 2 (default) is the KCL 2.x-style lease table multilangd uses. --kcl 3
adds what Java KCL 3.x workers sharing the table create: the
LeaseOwnerToLeaseKeyIndex GSI and, unless migrateAllEntitiesToLeaseTable =
true, the <app>-CoordinatorState and <app>-WorkerMetricStats tables.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, kcl, err := f.load(args)
			if err != nil {
				return err
			}
			tables := iac.Tables(cfg, kcl)
			w := cmd.OutOrStdout()
			switch f.format {
			case "cloudformation", "cfn":
				return iac.CloudFormation(w, tables)
			case "terraform", "tf":
				return iac.Terraform(w, tables)
			case "both", "":
				return iac.Schema(w, tables)
			}
			return &exitCodeError{code: exitError, err: errBadFormat(f.format)}
		},
	}
	schema.Flags().StringVarP(&f.file, "properties-file", "p", "", "KCL .properties file")
	schema.Flags().StringVar(&f.kcl, "kcl", "2", "schema generation: 2 (the lease table multilangd uses) or 3 (adds Java KCL 3.x's GSI and tables)")
	schema.Flags().StringVar(&f.format, "format", "both", "both, cloudformation or terraform")
	table.AddCommand(schema)
	return table
}

// newIAMPolicyCmd returns `iam-policy`.
func newIAMPolicyCmd() *cobra.Command {
	var f iacFlags
	cmd := &cobra.Command{
		Use:   "iam-policy [-p FILE | FILE] [--account ID]",
		Short: "Print the least-privilege IAM policy for a worker with this configuration",
		Long: `iam-policy prints the IAM policy document a multilangd worker needs for the
configuration: Kinesis reads on the stream (plus the consumer for enhanced
fan-out), the lease-table operations (CreateTable only unless leaseTableCreate
= never), a read of the KCL 3.x CoordinatorState table and, unless
metricsLevel = NONE, cloudwatch:PutMetricData in the applicationName
namespace. --account fills the account id in the ARNs (default *).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := f.load(args)
			if err != nil {
				return err
			}
			return iac.WritePolicy(cmd.OutOrStdout(), iac.IAMPolicy(cfg, iac.PolicyOptions{Account: f.account, CreateTable: cfg.LeaseTableCreate != properties.LeaseTableCreateNever}))
		},
	}
	cmd.Flags().StringVarP(&f.file, "properties-file", "p", "", "KCL .properties file")
	cmd.Flags().StringVar(&f.account, "account", "", "AWS account id for the ARNs (default *)")
	return cmd
}

var errNoPropertiesFile = errors.New("no properties file given: use --properties-file FILE (or -p FILE, or a single positional FILE)")

func errBadFormat(f string) error {
	return fmt.Errorf("--format %q: want both, cloudformation or terraform", f)
}
