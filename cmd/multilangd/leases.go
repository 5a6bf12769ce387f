package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/awsclient"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/properties"
)

// newLeasesCmd returns the `leases` subcommand: a table of the lease table,
// the first thing to look at when a shard seems stuck.
func newLeasesCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "leases [-p FILE | FILE]",
		Short: "Show the lease table: shard, owner, counter, checkpoint, parents, children, state",
		Long: `leases prints one row per lease of the application's lease table, sorted by
lease key: owner, leaseCounter, checkpoint (sequence[/sub-sequence]), parents,
children and a state:

  SHARD_END  the shard is finished (checkpoint SHARD_END); waits for cleanup
  OWNED      a worker holds the lease
  UNOWNED    nobody holds it; the next taker run picks it up

Non-lease items a KCL 3.x fleet keeps in the same table are counted, not shown;
malformed lease items (which every worker skips) are listed with the reason.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := file
			if path == "" && len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return errors.New("no properties file given: use --properties-file FILE (or -p FILE, or a single positional FILE)")
			}
			cfg, err := properties.Load(path)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			return printLeases(ctx, cmd.OutOrStdout(), cfg)
		},
	}
	cmd.Flags().StringVarP(&file, "properties-file", "p", "", "KCL .properties file")
	return cmd
}

func printLeases(ctx context.Context, w io.Writer, cfg *properties.Config) error {
	clients, err := awsclient.New(ctx, cfg, zap.NewNop())
	if err != nil {
		return err
	}
	return writeLeaseTable(ctx, w, cfg, lease.NewDynamoStore(clients.DynamoDB, cfg.TableName, zap.NewNop()))
}

// rawItemSource reads every item of the lease table (lease.DynamoStore).
type rawItemSource interface {
	RawItems(ctx context.Context) ([]map[string]types.AttributeValue, error)
}

// writeLeaseTable prints the aligned lease table, sorted by lease key.
func writeLeaseTable(ctx context.Context, w io.Writer, cfg *properties.Config, store rawItemSource) error {
	items, err := store.RawItems(ctx)
	if err != nil {
		return fmt.Errorf("reading lease table %s: %w", cfg.TableName, err)
	}
	var leases []lease.Lease
	var malformed []error
	other := 0
	for _, it := range items {
		l, err := lease.UnmarshalItem(it)
		switch {
		case errors.Is(err, lease.ErrNotLease):
			other++
		case err != nil:
			// Skipped by every worker (docs/architecture.md "The lease
			// table"): show why, by key.
			malformed = append(malformed, err)
		default:
			leases = append(leases, l)
		}
	}
	sort.Slice(leases, func(i, j int) bool { return leases[i].Key < leases[j].Key })
	stream := "stream " + cfg.StreamName
	if cfg.MultiStream() {
		stream = fmt.Sprintf("%d streams", len(cfg.Streams))
	}
	fmt.Fprintf(w, "lease table %s (application %s, %s): %d leases\n", cfg.TableName, cfg.ApplicationName, stream, len(leases))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEASE KEY\tOWNER\tCOUNTER\tCHECKPOINT\tPARENTS\tCHILDREN\tSTATE")
	for _, l := range leases {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.Key, dash(l.Owner), l.Counter, checkpointText(l),
			dash(strings.Join(l.ParentShardIDs, ",")), dash(strings.Join(l.ChildShardIDs, ",")), leaseState(l))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if other > 0 {
		fmt.Fprintf(w, "%d non-lease item(s) (KCL 3.x metadata) not shown\n", other)
	}
	if len(malformed) > 0 {
		fmt.Fprintf(w, "%d malformed lease item(s), skipped by every worker:\n", len(malformed))
		for _, err := range malformed {
			fmt.Fprintf(w, "  %v\n", err)
		}
	}
	return nil
}

func checkpointText(l lease.Lease) string {
	s := l.Checkpoint.Sequence
	if s == "" {
		s = "-"
	}
	if l.Checkpoint.SubSequence != 0 {
		s += "/" + strconv.FormatInt(l.Checkpoint.SubSequence, 10)
	}
	if l.PendingCheckpoint != nil {
		s += " (pending " + l.PendingCheckpoint.String() + ")"
	}
	return s
}

func leaseState(l lease.Lease) string {
	switch {
	case l.IsShardEnd():
		return "SHARD_END"
	case l.Owner != "":
		return "OWNED"
	}
	return "UNOWNED"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
