package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/workermetrics"
)

// kcl3View is the KCL 3.x state of an application (docs/operations.md
// "multilangd leases"): its coordinator-state items and worker metrics, from
// the lease table (3.5 single-table layout) or the legacy
// <app>-CoordinatorState / <app>-WorkerMetricStats tables.
type kcl3View struct {
	ClientVersion  *clientVersionView  `json:"clientVersion,omitempty"`
	TableMigration *tableMigrationView `json:"tableMigration,omitempty"`
	Leader         *leaderView         `json:"leader,omitempty"`
	// MetricsExpiryMillis is 2 × workerMetricsReporterFreqInMillis: older
	// worker metrics do not count (Java WorkerMetricStats.isExpired).
	MetricsExpiryMillis int64         `json:"workerMetricsExpiryMillis"`
	Workers             []workerView  `json:"workers"`
	Handoffs            []handoffView `json:"handoffs"`
}

// clientVersionView is the Migration3.0 item (Java MigrationState).
type clientVersionView struct {
	Version    string     `json:"cv"`
	ModifiedBy string     `json:"modifiedBy,omitempty"`
	ModifiedAt *time.Time `json:"modifiedAt,omitempty"`
	// History is the number of earlier versions kept in h (at most 10).
	History int    `json:"historyEntries"`
	Table   string `json:"table"`
}

// tableMigrationView is the TableMigration3.5 item (Java TableMigrationState).
type tableMigrationView struct {
	Status     string     `json:"tm"`
	ModifiedBy string     `json:"modifiedBy,omitempty"`
	ModifiedAt *time.Time `json:"modifiedAt,omitempty"`
	Table      string     `json:"table"`
}

// leaderView is the Leader lock item (dynamodb-lock-client LockItem).
type leaderView struct {
	Owner               string `json:"ownerName"`
	LeaseDurationMillis int64  `json:"leaseDurationMillis"`
	Released            bool   `json:"released"`
	RecordVersionNumber string `json:"recordVersionNumber"`
	Table               string `json:"table"`
}

// workerView is one worker: its WorkerMetricStats item (when it has one)
// and the leases it owns.
type workerView struct {
	ID string `json:"workerId"`
	// LastUpdate is lut; nil without a metrics item (or without lut).
	LastUpdate *time.Time   `json:"lastUpdate,omitempty"`
	Metrics    []metricView `json:"metrics,omitempty"`
	// Leases counts the leases whose actual owner (checkpointOwner during a
	// hand-off, else leaseOwner; Java Lease.actualOwner) is this worker;
	// ThroughputKBps sums their throughputKBps.
	Leases         int     `json:"leases"`
	ThroughputKBps float64 `json:"throughputKBps"`
	// Active is Java's rule for a worker the leader assigns to (LAMDataManager
	// and LeaseAssignmentManager.loadInMemoryStorageView): a valid item, lut
	// within the expiry, no metric whose latest value is −1. Inactive says
	// why not: "no metrics", "invalid", "expired" or "failing".
	Active   bool   `json:"active"`
	Inactive string `json:"inactiveReason,omitempty"`
	Table    string `json:"table,omitempty"`
}

// metricView is one metric of sts: its latest value and its operating range
// (opr; the first element is the maximum utilisation).
type metricView struct {
	Name           string  `json:"name"`
	Latest         float64 `json:"latest"`
	OperatingRange []int64 `json:"operatingRange,omitempty"`
}

// handoffView is a graceful hand-off in progress: checkpointOwner (the
// current owner) hands the lease to leaseOwner (Java W9).
type handoffView struct {
	Key  string `json:"leaseKey"`
	From string `json:"from"`
	To   string `json:"to"`
}

// rawItem is one item and the table it came from.
type rawItem struct {
	table string
	item  map[string]types.AttributeValue
}

// kcl3Items are the non-lease items of the lease table and the legacy
// tables, sorted out by kind.
type kcl3Items struct {
	migration, tableMigration, leader *rawItem
	workers                           []rawItem
	unreadable                        []string
}

// empty reports whether no KCL 3.x item was found anywhere.
func (k kcl3Items) empty() bool {
	return k.migration == nil && k.tableMigration == nil && k.leader == nil && len(k.workers) == 0
}

// add files item from table under its kind; it reports false for an item
// that is no KCL 3.x metadata item. An item already found is kept (the lease
// table is read first and wins, as Java reads it once the 3.5 table migration
// is complete; before that the items are only in the legacy table).
func (k *kcl3Items) add(table, pk string, item map[string]types.AttributeValue) bool {
	key := stringAttr(item, pk)
	it := &rawItem{table: table, item: item}
	switch {
	case key == lease.MigrationKey:
		if k.migration == nil {
			k.migration = it
		}
	case key == lease.TableMigrationKey:
		if k.tableMigration == nil {
			k.tableMigration = it
		}
	case key == lease.LeaderKey:
		if k.leader == nil {
			k.leader = it
		}
	case pk == workermetrics.LegacyTableKey || stringAttr(item, lease.AttrEntityType) == workermetrics.EntityType:
		k.workers = append(k.workers, *it)
	default:
		return false
	}
	return true
}

// legacyAPI is what the legacy tables are read with: GetItem of the
// coordinator-state keys (as Java CoordinatorStateDAO reads them, and as
// the worker's IAM policy allows) and a Scan of the worker metrics (Java
// WorkerMetricStatsDAO.getAllWorkerMetricStats).
type legacyAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// legacyTables are the KCL 3.0–3.4 tables (coordinatorStateTableName,
// workerMetricsTableName); api nil reads none.
type legacyTables struct {
	api                        legacyAPI
	coordinatorState, wmetrics string
}

// coordinatorStateKeys are the items of the CoordinatorState table (Java
// MigrationState, LeaderLock, TableMigrationState).
var coordinatorStateKeys = []string{lease.MigrationKey, lease.TableMigrationKey, lease.LeaderKey}

// readLegacy adds the items of the legacy tables that exist; a table that
// exists but cannot be read is named in k.unreadable (the lease table view
// stays useful without it).
func (lt legacyTables) readLegacy(ctx context.Context, k *kcl3Items) {
	if lt.api == nil {
		return
	}
	read := func(table, pk string, items func() ([]map[string]types.AttributeValue, error)) {
		if table == "" {
			return
		}
		its, err := items()
		var rnf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &rnf):
			return
		case err != nil:
			k.unreadable = append(k.unreadable, fmt.Sprintf("%s: %v", table, err))
			return
		}
		for _, it := range its {
			k.add(table, pk, it)
		}
	}
	read(lt.coordinatorState, "key", func() ([]map[string]types.AttributeValue, error) {
		return getItems(ctx, lt.api, lt.coordinatorState, "key", coordinatorStateKeys)
	})
	read(lt.wmetrics, workermetrics.LegacyTableKey, func() ([]map[string]types.AttributeValue, error) {
		return scanAll(ctx, lt.api, lt.wmetrics)
	})
}

// getItems reads the items of table under keys (consistent reads); absent
// ones are left out.
func getItems(ctx context.Context, api legacyAPI, table, pk string, keys []string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for _, key := range keys {
		out, err := api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{pk: &types.AttributeValueMemberS{Value: key}}})
		if err != nil {
			return nil, err
		}
		if len(out.Item) > 0 {
			items = append(items, out.Item)
		}
	}
	return items, nil
}

// scanAll reads every item of table (eventually consistent, paginated).
func scanAll(ctx context.Context, api legacyAPI, table string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		out, err := api.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ExclusiveStartKey: start})
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		start = out.LastEvaluatedKey
	}
}

// buildKCL3View turns the items into the view; nil when the application has
// no KCL 3.x state at all (a 2.x table: its output stays as before).
func buildKCL3View(k kcl3Items, leases []lease.Lease, expiry time.Duration, now time.Time) *kcl3View {
	var handoffs []handoffView
	for _, l := range leases {
		if l.CheckpointOwner != "" {
			handoffs = append(handoffs, handoffView{Key: l.Key, From: l.CheckpointOwner, To: l.Owner})
		}
	}
	if k.empty() && len(handoffs) == 0 {
		return nil
	}
	v := &kcl3View{MetricsExpiryMillis: expiry.Milliseconds(), Handoffs: handoffs,
		Workers: buildWorkers(k.workers, leases, expiry, now)}
	if v.Handoffs == nil {
		v.Handoffs = []handoffView{}
	}
	if it := k.migration; it != nil {
		v.ClientVersion = &clientVersionView{Version: stringAttr(it.item, "cv"), ModifiedBy: stringAttr(it.item, "mb"),
			ModifiedAt: millisAttr(it.item, "mts"), Table: it.table}
		if h, ok := it.item["h"].(*types.AttributeValueMemberL); ok {
			v.ClientVersion.History = len(h.Value)
		}
	}
	if it := k.tableMigration; it != nil {
		v.TableMigration = &tableMigrationView{Status: stringAttr(it.item, "tm"), ModifiedBy: stringAttr(it.item, "mb"),
			ModifiedAt: millisAttr(it.item, "mts"), Table: it.table}
	}
	if it := k.leader; it != nil {
		d, _ := strconv.ParseInt(stringAttr(it.item, "leaseDuration"), 10, 64)
		v.Leader = &leaderView{Owner: stringAttr(it.item, "ownerName"), LeaseDurationMillis: d,
			Released: stringAttr(it.item, "isReleased") == "1", RecordVersionNumber: stringAttr(it.item, "recordVersionNumber"), Table: it.table}
	}
	return v
}

// buildWorkers lists every worker with a metrics item or a lease, sorted by
// id; of two metrics items of one worker (lease table and legacy table) the
// newer counts, as Java LoadFleetView keeps the newest.
func buildWorkers(items []rawItem, leases []lease.Lease, expiry time.Duration, now time.Time) []workerView {
	byID := map[string]*workerView{}
	lut := map[string]int64{}
	for _, it := range items {
		id := stringAttr(it.item, lease.AttrLeaseKey)
		if id == "" {
			id = stringAttr(it.item, workermetrics.LegacyTableKey)
		}
		t, _ := intAttr(it.item, workermetrics.AttrLastUpdateTime)
		if _, seen := byID[id]; id == "" || (seen && t <= lut[id]) {
			continue
		}
		w := workerFromMetrics(id, it, expiry, now)
		byID[id], lut[id] = &w, t
	}
	for _, l := range leases {
		owner := l.ActualOwner()
		if owner == "" {
			continue
		}
		w, ok := byID[owner]
		if !ok {
			w = &workerView{ID: owner, Inactive: "no metrics"}
			byID[owner] = w
		}
		w.Leases++
		if l.ThroughputKBps != nil {
			w.ThroughputKBps += *l.ThroughputKBps
		}
	}
	out := make([]workerView, 0, len(byID))
	for _, w := range byID {
		w.ThroughputKBps = math.Round(w.ThroughputKBps*1e6) / 1e6
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// workerFromMetrics reads a WorkerMetricStats item and applies Java's
// activity rule (WorkerMetricStats.isValidWorkerMetric, isExpired,
// isAnyWorkerMetricFailing).
func workerFromMetrics(id string, it rawItem, expiry time.Duration, now time.Time) workerView {
	w := workerView{ID: id, Table: it.table}
	sts := numberLists(it.item, workermetrics.AttrMetricStats)
	opr := numberLists(it.item, workermetrics.AttrOperatingRange)
	names := make([]string, 0, len(sts))
	for name := range sts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vs := sts[name]
		if len(vs) == 0 {
			continue
		}
		m := metricView{Name: name, Latest: vs[len(vs)-1]}
		for _, r := range opr[name] {
			m.OperatingRange = append(m.OperatingRange, int64(r))
		}
		w.Metrics = append(w.Metrics, m)
	}
	t, ok := intAttr(it.item, workermetrics.AttrLastUpdateTime)
	if ok {
		lu := time.Unix(t, 0).UTC()
		w.LastUpdate = &lu
	}
	switch {
	case !validMetrics(ok, sts, opr, it.item):
		w.Inactive = "invalid"
	case now.Sub(*w.LastUpdate) > expiry:
		w.Inactive = "expired"
	case !defaultMetric(sts, opr) && anyFailing(w.Metrics):
		w.Inactive = "failing"
	default:
		w.Active = true
	}
	return w
}

// throughputMetric is the key Java's isUsingDefaultWorkerMetric looks for
// (WorkerMetricType.THROUGHPUT.name()).
const throughputMetric = "THROUGHPUT"

// defaultMetric is Java WorkerMetricStats.isUsingDefaultWorkerMetric: no
// explicit metric (a throughput-only entry).
func defaultMetric(sts, opr map[string][]float64) bool {
	if len(sts) == 0 && len(opr) == 0 {
		return true
	}
	_, ok := sts[throughputMetric]
	return ok
}

// validMetrics is Java WorkerMetricStats.isValidWorkerMetric.
func validMetrics(hasLUT bool, sts, opr map[string][]float64, item map[string]types.AttributeValue) bool {
	if !hasLUT {
		return false
	}
	if defaultMetric(sts, opr) {
		return true
	}
	if _, ok := item[workermetrics.AttrMetricStats]; !ok {
		return false
	}
	if _, ok := item[workermetrics.AttrOperatingRange]; !ok {
		return false
	}
	for name := range sts {
		if _, ok := opr[name]; !ok {
			return false
		}
	}
	for _, r := range opr {
		if len(r) == 0 || r[0] == 0 {
			return false
		}
	}
	return true
}

// anyFailing: a metric whose latest value is −1 (Java
// WorkerMetricStats.isAnyWorkerMetricFailing).
func anyFailing(ms []metricView) bool {
	for _, m := range ms {
		if m.Latest == -1 {
			return true
		}
	}
	return false
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func intAttr(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

// millisAttr is an epoch-milliseconds N attribute as a UTC time.
func millisAttr(item map[string]types.AttributeValue, name string) *time.Time {
	ms, ok := intAttr(item, name)
	if !ok {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

// numberLists reads an M of L of N attribute (sts, opr); unreadable numbers
// are left out.
func numberLists(item map[string]types.AttributeValue, name string) map[string][]float64 {
	m, ok := item[name].(*types.AttributeValueMemberM)
	if !ok {
		return nil
	}
	out := map[string][]float64{}
	for k, v := range m.Value {
		l, ok := v.(*types.AttributeValueMemberL)
		if !ok {
			continue
		}
		vs := []float64{}
		for _, e := range l.Value {
			if n, ok := e.(*types.AttributeValueMemberN); ok {
				if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
					vs = append(vs, f)
				}
			}
		}
		out[k] = vs
	}
	return out
}

// renderKCL3 prints the KCL 3.x state after the lease table.
func renderKCL3(w io.Writer, leaseTable string, v kcl3View, now time.Time) error {
	in := func(table string) string {
		if table == "" || table == leaseTable {
			return ""
		}
		return " [in " + table + "]"
	}
	fmt.Fprintln(w, "\nKCL 3.x")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch cv := v.ClientVersion; {
	case cv == nil:
		fmt.Fprintln(tw, "  client version:\tnone (no Migration3.0 item)")
	default:
		fmt.Fprintf(tw, "  client version:\t%s (set by %s at %s; %d earlier in its history)%s\n", dash(cv.Version),
			dash(cv.ModifiedBy), timeText(cv.ModifiedAt), cv.History, in(cv.Table))
	}
	if tm := v.TableMigration; tm != nil {
		fmt.Fprintf(tw, "  table migration:\t%s (set by %s at %s)%s\n", dash(tm.Status), dash(tm.ModifiedBy), timeText(tm.ModifiedAt), in(tm.Table))
	}
	switch l := v.Leader; {
	case l == nil:
		fmt.Fprintln(tw, "  leader:\tnone (no Leader lock item)")
	default:
		state := "held"
		if l.Released {
			state = "released"
		}
		fmt.Fprintf(tw, "  leader:\t%s (lock %s, lease duration %s, recordVersionNumber %s)%s\n", dash(l.Owner), state,
			time.Duration(l.LeaseDurationMillis)*time.Millisecond, dash(l.RecordVersionNumber), in(l.Table))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := renderWorkers(w, v, now, in); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nhand-offs in progress: %d\n", len(v.Handoffs))
	if len(v.Handoffs) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEASE KEY\tFROM (checkpointOwner)\tTO (leaseOwner)")
	for _, h := range v.Handoffs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Key, h.From, dash(h.To))
	}
	return tw.Flush()
}

// renderWorkers prints the worker table.
func renderWorkers(w io.Writer, v kcl3View, now time.Time, in func(string) string) error {
	active := 0
	for _, wk := range v.Workers {
		if wk.Active {
			active++
		}
	}
	expiry := time.Duration(v.MetricsExpiryMillis) * time.Millisecond
	fmt.Fprintf(w, "\nworkers: %d, %d active (metrics updated within %s, none failing)\n", len(v.Workers), active, expiry)
	if len(v.Workers) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tMETRICS UPDATED\tMETRICS (latest/max)\tLEASES\tTHROUGHPUT KBPS\tACTIVE")
	for _, wk := range v.Workers {
		updated := "-"
		if wk.LastUpdate != nil {
			updated = now.Sub(*wk.LastUpdate).Round(time.Second).String() + " ago"
		}
		act := "yes"
		if !wk.Active {
			act = "no (" + wk.Inactive + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s%s\n", wk.ID, updated, metricsText(wk), wk.Leases,
			strconv.FormatFloat(wk.ThroughputKBps, 'f', -1, 64), act, in(wk.Table))
	}
	return tw.Flush()
}

// metricsText is "C 37.5/100, M 20/80": each metric's latest value and the
// first element (maximum) of its operating range.
func metricsText(wk workerView) string {
	switch {
	case wk.LastUpdate == nil && wk.Table == "":
		return "-"
	case len(wk.Metrics) == 0:
		return "throughput only"
	}
	parts := make([]string, 0, len(wk.Metrics))
	for _, m := range wk.Metrics {
		max := "-"
		if len(m.OperatingRange) > 0 {
			max = strconv.FormatInt(m.OperatingRange[0], 10)
		}
		parts = append(parts, m.Name+" "+strconv.FormatFloat(m.Latest, 'f', -1, 64)+"/"+max)
	}
	return strings.Join(parts, ", ")
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func floatText(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}
