package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/awscount"
)

// On-demand DynamoDB prices used for the dollar estimate (us-east-1, since
// the November 2024 price reduction), per million request units.
const (
	pricePerMillionRRU = 0.125
	pricePerMillionWRU = 0.625
	hoursPerMonth      = 730
)

// The Java KCL 2.x schedule at default timings (failoverTimeMillis 10000,
// epsilonMillis 25), from its source:
//   - LeaseRenewer: every lease renewed every failover/3 − epsilon
//     (DynamoDBLeaseCoordinator leaseRenewalIntervalMillis) → UpdateItem;
//   - DynamoDBLeaseTaker: a listLeases scan every (failover + epsilon) × 2
//     (takerIntervalMillis) per worker;
//   - DeterministicShuffleShardSyncLeaderDecider: a listLeases scan every
//     5 min per worker (ELECTION_SCHEDULING_INTERVAL_MILLIS);
//   - PeriodicShardSyncManager: a listLeases scan every 2 min on the leader
//     (leasesRecoveryAuditorExecutionFrequencyMillis);
//   - no GetItem in steady state (getLease only at initialisation, shutdown
//     and parent checks); all reads eventually consistent (consistentReads
//     false).
var (
	javaFailover      = 10 * time.Second
	javaRenewPeriod   = javaFailover/3 - 25*time.Millisecond
	javaTakerPeriod   = (javaFailover + 25*time.Millisecond) * 2
	javaElectionScans = 12.0 // per worker-hour
	javaAuditorScans  = 30.0 // per fleet-hour (leader only)
)

// ddbRates is one fleet run's steady-state request rates (NaN: not
// measured, for the Java column).
type ddbRates struct {
	label           string
	updatesPerLease float64 // UpdateItem per lease-hour
	eventualScans   float64 // per worker-hour (pages)
	consistentScans float64 // per worker-hour (pages)
	leaseGets       float64 // consistent GetItem on the lease table per worker-hour
	eventualGets    float64 // eventually consistent GetItem per worker-hour
	legacyGets      float64 // GetItem on the KCL 3.0–3.4 CoordinatorState table per worker-hour
	legacyMissing   bool    // that table did not exist (ResourceNotFoundException: no capacity)
	other           map[string]float64
	wcuPerLease     float64 // WCU per lease-hour as dynalite reported it
}

// TestBenchDynamoDB measures what a fleet costs in DynamoDB requests and
// capacity at Java's default timings (failoverTimeMillis 10000: renewals
// every 3.3 s, a taker scan every 20 s per worker), two workers on 8 leases
// and no records, scaled to per lease-hour and per worker-hour, next to what
// Java's schedule implies, and writes the table to
// $MULTILANGD_BENCH_DDB_OUT. It only runs with MULTILANGD_BENCH_DDB=1
// (scripts/bench-dynamodb.sh, `make bench-dynamodb`).
// MULTILANGD_BENCH_DDB_SECONDS (default 180) sets the measured window;
// MULTILANGD_BENCH_DDB_BEFORE names an older build measured first for a
// before/after comparison (MULTILANGD_BENCH_DDB_BEFORE_LABEL names it).
func TestBenchDynamoDB(t *testing.T) {
	if os.Getenv("MULTILANGD_BENCH_DDB") == "" {
		t.Skip("set MULTILANGD_BENCH_DDB=1 (make bench-dynamodb) to run the DynamoDB cost benchmark")
	}
	window := 180 * time.Second
	if v, err := strconv.Atoi(os.Getenv("MULTILANGD_BENCH_DDB_SECONDS")); err == nil && v > 0 {
		window = time.Duration(v) * time.Second
	}
	type build struct{ label, bin string }
	builds := []build{}
	if b := os.Getenv("MULTILANGD_BENCH_DDB_BEFORE"); b != "" {
		l := os.Getenv("MULTILANGD_BENCH_DDB_BEFORE_LABEL")
		if l == "" {
			l = "before"
		}
		builds = append(builds, build{l, b})
	}
	builds = append(builds, build{"multilangd (this build)", binDaemon})
	const workers, leases = 2, 8
	var runs []ddbRates
	var itemBytes float64
	for _, b := range builds {
		var r ddbRates
		t.Run(b.label, func(t *testing.T) {
			old := binDaemon
			binDaemon = b.bin
			defer func() { binDaemon = old }()
			f := startFleet(t, workers, leases, map[string]string{"failoverTimeMillis": "10000", "shardSyncIntervalMillis": "60000"})
			f.waitBalanced(t)
			f.ddb.Reset()
			time.Sleep(window)
			snap := f.ddb.Snapshot()
			itemBytes = f.avgLeaseItemBytes(t)
			f.stop(t)
			r = rates(b.label, snap, f.e.app, window, workers, leases)
			for _, k := range awscount.Keys(snap) {
				s := snap[k]
				fmt.Printf("DDBCOST %s | %s %s consistent=%t segmented=%t | requests=%d errors=%d %v | units=%.1f\n",
					b.label, k.Action, k.Resource, k.Consistent, k.Segmented, s.Requests, s.Errors, s.ErrorTypes, s.CapacityUnits)
			}
		})
		runs = append(runs, r)
	}
	doc := costDoc(runs, window, workers, leases, itemBytes)
	fmt.Print(doc)
	if out := os.Getenv("MULTILANGD_BENCH_DDB_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func rates(label string, snap map[awscount.Key]awscount.Stat, table string, window time.Duration, workers, leases int) ddbRates {
	h := window.Hours()
	perWorker := func(n float64) float64 { return n / h / float64(workers) }
	r := ddbRates{label: label, other: map[string]float64{}}
	for k, s := range snap {
		if k.Service != "dynamodb" {
			continue
		}
		n := float64(s.Requests)
		_, wcu := awscount.Estimate(k, s)
		r.wcuPerLease += wcu / h / float64(leases)
		switch {
		case k.Action == "UpdateItem" && k.Resource == table:
			r.updatesPerLease += n / h / float64(leases)
		case k.Action == "Scan" && k.Consistent:
			r.consistentScans += perWorker(n)
		case k.Action == "Scan":
			r.eventualScans += perWorker(n)
		case k.Action == "GetItem" && k.Resource != table:
			r.legacyGets += perWorker(n)
			r.legacyMissing = s.ErrorTypes["ResourceNotFoundException"] == s.Requests
		case k.Action == "GetItem" && k.Consistent:
			r.leaseGets += perWorker(n)
		case k.Action == "GetItem":
			r.eventualGets += perWorker(n)
		default:
			r.other[k.Action] += perWorker(n)
		}
	}
	return r
}

// avgLeaseItemBytes is the mean DynamoDB item size of the lease items
// (attribute names plus values, numbers counted as their digits / 2 + 1),
// used to project scan cost onto a larger table.
func (f *fleet) avgLeaseItemBytes(t *testing.T) float64 {
	t.Helper()
	out, err := f.e.ddb.DynamoDB().Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(f.e.app)})
	if err != nil || len(out.Items) == 0 {
		t.Fatalf("scan for item sizes: %v", err)
	}
	total := 0
	for _, it := range out.Items {
		for name, v := range it {
			total += len(name)
			switch v := v.(type) {
			case *dtypes.AttributeValueMemberS:
				total += len(v.Value)
			case *dtypes.AttributeValueMemberN:
				total += len(strings.TrimLeft(v.Value, "-0"))/2 + 1
			case *dtypes.AttributeValueMemberSS:
				for _, s := range v.Value {
					total += len(s)
				}
			default:
				total += 8
			}
		}
	}
	return float64(total) / float64(len(out.Items))
}

// fleetCost projects a run's rates onto a fleet of workers and leases:
// request units per hour. GetItems on a missing legacy table consume none.
func fleetCost(r ddbRates, workers, leases int, itemBytes float64) (rru, wru float64) {
	pages := math.Ceil(float64(leases) * itemBytes / 4096)
	gets := r.leaseGets + r.eventualGets*0.5
	if !r.legacyMissing {
		gets += r.legacyGets
	}
	rru = float64(workers) * (r.eventualScans*pages*0.5 + r.consistentScans*pages + gets)
	wru = float64(leases) * r.updatesPerLease
	return rru, wru
}

func javaRates(workers int) ddbRates {
	return ddbRates{
		label:           "Java KCL 2.x (its schedule)",
		updatesPerLease: time.Hour.Seconds() / javaRenewPeriod.Seconds(),
		eventualScans:   time.Hour.Seconds()/javaTakerPeriod.Seconds() + javaElectionScans + javaAuditorScans/float64(workers),
		wcuPerLease:     math.NaN(),
	}
}

func costDoc(runs []ddbRates, window time.Duration, workers, leases int, itemBytes float64) string {
	all := append(append([]ddbRates{}, runs...), javaRates(workers))
	var b strings.Builder
	fmt.Fprintf(&b, "# DynamoDB cost\n\n")
	fmt.Fprintf(&b, "Generated by `make bench-dynamodb` (scripts/bench-dynamodb.sh → e2e TestBenchDynamoDB) on %s.\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Method: %d multilangd workers (real binaries, the Go test child) on a stream of %d shards, Java's default\n", workers, leases)
	fmt.Fprintf(&b, "timings (`failoverTimeMillis = 10000`: renewals every 3.3 s, a taker scan every 20 s per worker), no records.\n")
	fmt.Fprintf(&b, "Every DynamoDB request goes through a counting proxy (internal/awscount) in front of dynalite, which also\n")
	fmt.Fprintf(&b, "reports the capacity each request consumed. Counted over %s of steady state (after every lease is\n", window)
	fmt.Fprintf(&b, "owned and both workers hold some) and scaled to an hour. The Java column is computed from its source:\n")
	fmt.Fprintf(&b, "renewals every failover/3 − epsilon, a taker scan every (failover + epsilon) × 2, a leader-election scan\n")
	fmt.Fprintf(&b, "every 5 min per worker and an auditor scan every 2 min on the leader; no periodic GetItem; all reads\n")
	fmt.Fprintf(&b, "eventually consistent. Scan counts are pages (one page per scan for these tables). A %s window\n", window)
	fmt.Fprintf(&b, "weighs the leader election's first run (60 s after start, then every 5 min) more than an hour would.\n\n")
	b.WriteString("## Requests\n\n| request | ")
	for _, r := range all {
		b.WriteString(r.label + " | ")
	}
	b.WriteString("\n|---|")
	for range all {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	row := func(name string, f func(r ddbRates) float64) {
		fmt.Fprintf(&b, "| %s | ", name)
		for _, r := range all {
			fmt.Fprintf(&b, "%s | ", fmtN(f(r)))
		}
		b.WriteString("\n")
	}
	row("UpdateItem (renewals) per lease-hour", func(r ddbRates) float64 { return r.updatesPerLease })
	row("Scan, eventually consistent, per worker-hour", func(r ddbRates) float64 { return r.eventualScans })
	row("Scan, **consistent**, per worker-hour", func(r ddbRates) float64 { return r.consistentScans })
	row("GetItem on the lease table, consistent, per worker-hour", func(r ddbRates) float64 { return r.leaseGets })
	row("GetItem on the lease table, eventually consistent, per worker-hour", func(r ddbRates) float64 { return r.eventualGets })
	row("GetItem on `<app>-CoordinatorState` (KCL 3.0–3.4; absent here: no capacity), per worker-hour", func(r ddbRates) float64 { return r.legacyGets })
	others := map[string]bool{}
	for _, r := range all {
		for k := range r.other {
			others[k] = true
		}
	}
	for k := range others {
		row(k+" per worker-hour", func(r ddbRates) float64 { return r.other[k] })
	}
	row("WCU per lease-hour as dynalite reported it", func(r ddbRates) float64 { return r.wcuPerLease })
	row(fmt.Sprintf("RCU per worker-hour at %d leases (estimated, see below)", leases), func(r ddbRates) float64 {
		rru, _ := fleetCost(r, 1, leases, itemBytes)
		return rru
	})

	const fw, fl = 10, 1000
	fmt.Fprintf(&b, "\n## A named fleet: %d workers, %d shards\n\n", fw, fl)
	fmt.Fprintf(&b, "Projected from the rates above: every scan reads the whole table, ⌈%d × %.0f B / 4 KB⌉ = %.0f read units\n", fl, itemBytes, math.Ceil(fl*itemBytes/4096))
	fmt.Fprintf(&b, "consistent, half that eventually consistent (%.0f B is the mean lease item measured here); a GetItem is 1 unit\n", itemBytes)
	fmt.Fprintf(&b, "consistent, ½ eventually (none for the reads of an absent `CoordinatorState` table, which fail with\n")
	fmt.Fprintf(&b, "ResourceNotFoundException; next to a KCL 3.0–3.4 fleet's table they cost 1 unit each, at most 60 per\n")
	fmt.Fprintf(&b, "worker-hour); a renewal is 1 write unit. Checkpoint writes depend on the application and are\n")
	fmt.Fprintf(&b, "not included. On-demand prices (us-east-1): $%.3f per million read request units, $%.3f per million\n", pricePerMillionRRU, pricePerMillionWRU)
	fmt.Fprintf(&b, "write request units; a month is %d hours.\n\n", hoursPerMonth)
	b.WriteString("| | read units / hour | write units / hour | reads $ / month | writes $ / month | total $ / month |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range all {
		rru, wru := fleetCost(r, fw, fl, itemBytes)
		rd := rru * hoursPerMonth / 1e6 * pricePerMillionRRU
		wr := wru * hoursPerMonth / 1e6 * pricePerMillionWRU
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %.2f | %.2f |\n", r.label, fmtN(rru), fmtN(wru), rd, wr, rd+wr)
	}
	return b.String()
}

func fmtN(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v == 0:
		return "0"
	case v >= 100:
		s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}
