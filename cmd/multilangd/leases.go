package main

import (
	"context"
	"encoding/json"
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
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "leases [-p FILE | FILE]",
		Short: "Show the lease table (shard, owner, counter, checkpoint, parents, children, state) and the KCL 3.x state",
		Long: `leases prints one row per lease of the application's lease table, sorted by
lease key: owner, leaseCounter, checkpoint (sequence[/sub-sequence]), parents,
children, a state and, when a KCL 3.x worker wrote it, throughputKBps:

  SHARD_END  the shard is finished (checkpoint SHARD_END); waits for cleanup
  OWNED      a worker holds the lease
  UNOWNED    nobody holds it; the next taker run picks it up

On a KCL 3.x table (items in the lease table, or the legacy
<app>-CoordinatorState / <app>-WorkerMetricStats tables) it then shows the
client version (Migration3.0), the table migration, the Leader lock, each
worker's metrics (latest value/maximum of each metric, leases, summed
throughputKBps, active by the Java leader's rule) and every graceful hand-off
in progress. A 2.x table shows the leases only.

Other non-lease items are counted, not shown; malformed lease items (which
every worker skips) are listed with the reason. --json prints the same as one
JSON document.`,
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
			return printLeases(ctx, cmd.OutOrStdout(), cfg, asJSON)
		},
	}
	cmd.Flags().StringVarP(&file, "properties-file", "p", "", "KCL .properties file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document instead of the tables")
	return cmd
}

func printLeases(ctx context.Context, w io.Writer, cfg *properties.Config, asJSON bool) error {
	clients, err := awsclient.New(ctx, cfg, zap.NewNop())
	if err != nil {
		return err
	}
	return writeLeaseTable(ctx, w, cfg, lease.NewDynamoStore(clients.DynamoDB, cfg.TableName, zap.NewNop()), leasesOptions{
		JSON: asJSON,
		Now:  time.Now(),
		Legacy: legacyTables{api: clients.DynamoDB, coordinatorState: cfg.CoordinatorStateTable.TableName,
			wmetrics: cfg.WorkerMetricsTable.TableName},
	})
}

// rawItemSource reads every item of the lease table (lease.DynamoStore).
type rawItemSource interface {
	RawItems(ctx context.Context) ([]map[string]types.AttributeValue, error)
}

// leasesOptions are how writeLeaseTable reads and prints.
type leasesOptions struct {
	JSON bool
	// Now is the time worker-metrics ages are measured against.
	Now time.Time
	// Legacy are the KCL 3.0–3.4 tables read besides the lease table.
	Legacy legacyTables
}

// leasesView is everything `multilangd leases` shows.
type leasesView struct {
	Table       string      `json:"leaseTable"`
	Application string      `json:"applicationName"`
	Stream      string      `json:"streamName,omitempty"`
	Streams     int         `json:"streams,omitempty"`
	Leases      []leaseView `json:"leases"`
	// OtherItems counts the non-lease items not shown otherwise.
	OtherItems int       `json:"otherItems"`
	Malformed  []string  `json:"malformed,omitempty"`
	KCL3       *kcl3View `json:"kcl3,omitempty"`
	// Unreadable names the legacy KCL 3.0–3.4 tables that exist (or may)
	// but could not be read, with the error.
	Unreadable []string `json:"unreadable,omitempty"`
}

// leaseView is one lease row.
type leaseView struct {
	Key               string   `json:"leaseKey"`
	Owner             string   `json:"leaseOwner,omitempty"`
	Counter           int64    `json:"leaseCounter"`
	Checkpoint        string   `json:"checkpoint"`
	SubSequence       int64    `json:"checkpointSubSequenceNumber"`
	PendingCheckpoint string   `json:"pendingCheckpoint,omitempty"`
	Parents           []string `json:"parentShardIds,omitempty"`
	Children          []string `json:"childShardIds,omitempty"`
	State             string   `json:"state"`
	ThroughputKBps    *float64 `json:"throughputKBps,omitempty"`
	CheckpointOwner   string   `json:"checkpointOwner,omitempty"`
	lease             lease.Lease
}

// writeLeaseTable prints the lease table sorted by lease key and, on a KCL
// 3.x table, the 3.x state; or all of it as JSON.
func writeLeaseTable(ctx context.Context, w io.Writer, cfg *properties.Config, store rawItemSource, opts leasesOptions) error {
	v, err := loadLeasesView(ctx, cfg, store, opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return renderLeases(w, v, opts.Now)
}

// loadLeasesView reads the lease table and the legacy tables into the view.
func loadLeasesView(ctx context.Context, cfg *properties.Config, store rawItemSource, opts leasesOptions) (leasesView, error) {
	items, err := store.RawItems(ctx)
	if err != nil {
		return leasesView{}, fmt.Errorf("reading lease table %s: %w", cfg.TableName, err)
	}
	v := leasesView{Table: cfg.TableName, Application: cfg.ApplicationName, Leases: []leaseView{}}
	if cfg.MultiStream() {
		v.Streams = len(cfg.Streams)
	} else {
		v.Stream = cfg.StreamName
	}
	var k3 kcl3Items
	var leases []lease.Lease
	for _, it := range items {
		if k3.add(cfg.TableName, lease.AttrLeaseKey, it) {
			continue
		}
		l, err := lease.UnmarshalItem(it)
		switch {
		case errors.Is(err, lease.ErrNotLease):
			v.OtherItems++
		case err != nil:
			// Skipped by every worker (docs/architecture.md "The lease
			// table"): show why, by key.
			v.Malformed = append(v.Malformed, err.Error())
		default:
			leases = append(leases, l)
		}
	}
	sort.Slice(leases, func(i, j int) bool { return leases[i].Key < leases[j].Key })
	for _, l := range leases {
		v.Leases = append(v.Leases, newLeaseView(l))
	}
	opts.Legacy.readLegacy(ctx, &k3)
	v.KCL3 = buildKCL3View(k3, leases, 2*cfg.WorkerMetricsReporterFreq, opts.Now)
	v.Unreadable = k3.unreadable
	return v, nil
}

func newLeaseView(l lease.Lease) leaseView {
	lv := leaseView{Key: l.Key, Owner: l.Owner, Counter: l.Counter, Checkpoint: l.Checkpoint.Sequence,
		SubSequence: l.Checkpoint.SubSequence, Parents: l.ParentShardIDs, Children: l.ChildShardIDs, State: leaseState(l),
		ThroughputKBps: l.ThroughputKBps, CheckpointOwner: l.CheckpointOwner, lease: l}
	if l.PendingCheckpoint != nil {
		lv.PendingCheckpoint = l.PendingCheckpoint.String()
	}
	return lv
}

// renderLeases prints v as aligned tables.
func renderLeases(w io.Writer, v leasesView, now time.Time) error {
	stream := "stream " + v.Stream
	if v.Stream == "" {
		stream = fmt.Sprintf("%d streams", v.Streams)
	}
	fmt.Fprintf(w, "lease table %s (application %s, %s): %d leases\n", v.Table, v.Application, stream, len(v.Leases))
	withThroughput := false
	for _, l := range v.Leases {
		withThroughput = withThroughput || l.ThroughputKBps != nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "LEASE KEY\tOWNER\tCOUNTER\tCHECKPOINT\tPARENTS\tCHILDREN\tSTATE"
	if withThroughput {
		header += "\tTHROUGHPUT KBPS"
	}
	fmt.Fprintln(tw, header)
	for _, lv := range v.Leases {
		l := lv.lease
		row := fmt.Sprintf("%s\t%s\t%d\t%s\t%s\t%s\t%s", l.Key, dash(l.Owner), l.Counter, checkpointText(l),
			dash(strings.Join(l.ParentShardIDs, ",")), dash(strings.Join(l.ChildShardIDs, ",")), lv.State)
		if withThroughput {
			row += "\t" + floatText(l.ThroughputKBps)
		}
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if v.OtherItems > 0 {
		fmt.Fprintf(w, "%d non-lease item(s) (KCL 3.x metadata) not shown\n", v.OtherItems)
	}
	if len(v.Malformed) > 0 {
		fmt.Fprintf(w, "%d malformed lease item(s), skipped by every worker:\n", len(v.Malformed))
		for _, m := range v.Malformed {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	if len(v.Unreadable) > 0 {
		fmt.Fprintf(w, "could not read: %s\n", strings.Join(v.Unreadable, "; "))
	}
	if v.KCL3 != nil {
		return renderKCL3(w, v.Table, *v.KCL3, now)
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
