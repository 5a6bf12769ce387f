package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/multilangd/multilangd/internal/testenv"
)

// avType renders an attribute value's DynamoDB type: S, N, B, SS, NS, BS,
// BOOL, NULL; a list as L<T> (T the common element type) and a map as M<T>
// when every value has type T (worker-metric maps keyed by metric name) or
// M{k:T,...} otherwise.
func avType(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		elems := map[string]bool{}
		for _, e := range v.Value {
			elems[avType(e)] = true
		}
		if len(elems) == 1 {
			for t := range elems {
				return "L<" + t + ">"
			}
		}
		return "L<" + strings.Join(sortedKeys(elems), "|") + ">"
	case *types.AttributeValueMemberM:
		vals := map[string]bool{}
		fields := make([]string, 0, len(v.Value))
		for k, e := range v.Value {
			vals[avType(e)] = true
			fields = append(fields, k+":"+avType(e))
		}
		sort.Strings(fields)
		if len(vals) == 1 && len(v.Value) > 0 && !strings.Contains(fields[0], "M{") && strings.HasPrefix(sortedKeys(vals)[0], "L<") {
			return "M<" + sortedKeys(vals)[0] + ">"
		}
		return "M{" + strings.Join(fields, ",") + "}"
	}
	return fmt.Sprintf("?%T", av)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// javaAttr is one attribute of a Java KCL 3.x item: its DynamoDB type, and
// whether Java always writes it; value, when set, must match the value.
type javaAttr struct {
	typ    string
	always bool
	value  *regexp.Regexp
}

func re(s string) *regexp.Regexp { return regexp.MustCompile("^(?:" + s + ")$") }

// Shapes of the items of the Java KCL 3.5 single-table layout, from the
// Java source: DynamoDBLeaseSerializer (leases, W8/W9 updates),
// AmazonDynamoDBLockClient with LeaderLock.serialize (the lock),
// MigrationState.serialize (Migration3.0) and the
// LeaseTableWorkerMetricStats bean written by WorkerMetricStatsReporter.
var (
	javaWorkerMetricStats = map[string]javaAttr{
		"leaseKey":   {typ: "S", always: true},
		"entityType": {typ: "S", always: true, value: re("WORKER_METRIC_STATS")},
		"lut":        {typ: "N", always: true, value: re(`[0-9]{10}`)}, // epoch seconds
		"sts":        {typ: "M<L<N>>", always: true},
		"opr":        {typ: "M<L<N>>", always: true},
		"properties": {typ: "M<S>"},
		"sup":        {typ: "N", always: true},
		"slu":        {typ: "N", always: true, value: re(`[0-9]{10}`)},
	}
	javaMigration = map[string]javaAttr{
		"leaseKey":   {typ: "S", always: true, value: re(`Migration3\.0`)},
		"entityType": {typ: "S", always: true, value: re("CLIENT_VERSION_MIGRATION")},
		"cv":         {typ: "S", always: true, value: re("CLIENT_VERSION_(2X|UPGRADE_FROM_2X|3X_WITH_ROLLBACK|3X)")},
		"mb":         {typ: "S", always: true},
		"mts":        {typ: "N", always: true, value: re(`[0-9]{13}`)}, // epoch ms
		"h":          {typ: "L<M{cv:S,mb:S,mts:N}>"},
	}
	javaLeaderLock = map[string]javaAttr{
		"leaseKey":            {typ: "S", always: true, value: re("Leader")},
		"entityType":          {typ: "S", always: true, value: re("LEADER")},
		"ownerName":           {typ: "S", always: true},
		"leaseDuration":       {typ: "S", always: true, value: re(`[0-9]+`)},
		"recordVersionNumber": {typ: "S", always: true, value: re(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)},
		"isReleased":          {typ: "S", value: re("1")},
		"data":                {typ: "B"},
	}
	javaLease = map[string]javaAttr{
		"leaseKey":                           {typ: "S", always: true},
		"leaseOwner":                         {typ: "S"},
		"leaseCounter":                       {typ: "N", always: true, value: re(`[0-9]+`)},
		"ownerSwitchesSinceCheckpoint":       {typ: "N", always: true, value: re(`[0-9]+`)},
		"checkpoint":                         {typ: "S", always: true, value: re(`[0-9]+|TRIM_HORIZON|LATEST|AT_TIMESTAMP|SHARD_END`)},
		"checkpointSubSequenceNumber":        {typ: "N", always: true, value: re(`[0-9]+`)},
		"pendingCheckpoint":                  {typ: "S"},
		"pendingCheckpointSubSequenceNumber": {typ: "N"},
		"pendingCheckpointState":             {typ: "B"},
		"parentShardId":                      {typ: "SS"},
		"childShardIds":                      {typ: "SS"},
		"startingHashKey":                    {typ: "S", value: re(`[0-9]+`)},
		"endingHashKey":                      {typ: "S", value: re(`[0-9]+`)},
		"throughputKBps":                     {typ: "N"},
		"checkpointOwner":                    {typ: "S"},
		"entityType":                         {typ: "S", value: re("LEASE")},
	}
)

// documentedDivergence reports whether docs/compatibility.md has a table
// row naming attribute attr in backquotes (a deliberate divergence).
func documentedDivergence(t *testing.T, attr string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "|") && strings.Contains(line, "`"+attr+"`") {
			return true
		}
	}
	return false
}

// checkShape compares item, written by multilangd, field by field with the
// Java shape: every attribute must be one Java writes, with Java's type
// (and value form); every attribute Java always writes must be there unless
// docs/compatibility.md documents its absence.
func checkShape(t *testing.T, what string, item map[string]types.AttributeValue, shape map[string]javaAttr) {
	t.Helper()
	if len(item) == 0 {
		t.Errorf("%s: no item", what)
		return
	}
	names := make([]string, 0, len(item))
	for k := range item {
		names = append(names, k)
	}
	sort.Strings(names)
	var got []string
	for _, k := range names {
		typ := avType(item[k])
		got = append(got, k+":"+typ)
		ja, ok := shape[k]
		if !ok {
			t.Errorf("%s: attribute %s (%s) is not in Java's item", what, k, typ)
			continue
		}
		if typ != ja.typ && !(ja.typ == "M<L<N>>" && typ == "M{}") {
			t.Errorf("%s: attribute %s has type %s, Java writes %s", what, k, typ, ja.typ)
		}
		if s, ok := item[k].(*types.AttributeValueMemberS); ok && ja.value != nil && !ja.value.MatchString(s.Value) {
			t.Errorf("%s: attribute %s = %q, Java writes %s", what, k, s.Value, ja.value)
		}
		if n, ok := item[k].(*types.AttributeValueMemberN); ok && ja.value != nil && !ja.value.MatchString(n.Value) {
			t.Errorf("%s: attribute %s = %s, Java writes %s", what, k, n.Value, ja.value)
		}
	}
	for k, ja := range shape {
		if _, ok := item[k]; ja.always && !ok && !documentedDivergence(t, k) {
			t.Errorf("%s: Java always writes %s (%s); multilangd does not, and docs/compatibility.md does not say so", what, k, ja.typ)
		}
	}
	t.Logf("%s: %s", what, strings.Join(got, " "))
}

// TestKCL3GoldenItems: the items multilangd writes on a fresh KCL 3.x
// table (clientVersionConfig = CLIENT_VERSION_CONFIG_3X, DynamoDB Local)
// compared field by field with the Java KCL 3.5 shapes: Migration3.0 (cv =
// CLIENT_VERSION_3X, created as Java's MigrationClientVersionStateInitializer
// does), each worker's WorkerMetricStats, the lease-owner GSI, the Leader
// lock, a lease as the leader's assignment (W8) leaves it, a lease while a
// graceful hand-off is pending (W9: leaseOwner = the next owner,
// checkpointOwner = the old one, counter untouched) and after the old
// owner's transfer (W8: checkpointOwner removed, counter + 1).
func TestKCL3GoldenItems(t *testing.T) {
	e := newEnv(t, testenv.Kinesalite, testenv.DynamoDBLocal, 4)
	f := newFleet3x(e, fleet3xProps())
	f.cgroups = true
	// children cost CPU (the second worker draws a lease away from the
	// first) and answer shutdownRequested slowly (the hand-off stays
	// pending long enough to be read)
	f.childEnv = []string{"FLEET_BURN_BASE=0.05", "FLEET_SHUTDOWN_DELAY_MS=1500"}
	g1 := f.start("g1", nil)
	waitFor(t, 60*time.Second, "Migration3.0, g1's worker metrics, g1 leading and holding every lease", func() bool {
		owner, _ := lockOwner(context.Background(), t, e.ddb.DynamoDB(), e.app)
		return f.item("Migration3.0") != nil && f.metricsPublished("g1") && owner == "g1" && f.counts()["g1"] == 4
	}, g1)
	mig := f.item("Migration3.0")
	checkShape(t, "Migration3.0", mig, javaMigration)
	if cv, mb := attrStr(mig, "cv"), attrStr(mig, "mb"); cv != "CLIENT_VERSION_3X" || mb != "g1" {
		t.Errorf("Migration3.0 cv=%s mb=%s, want CLIENT_VERSION_3X by g1", cv, mb)
	}
	checkShape(t, "WorkerMetricStats", f.item("g1"), javaWorkerMetricStats)
	checkOwnerIndex(t, e)
	checkShape(t, "Leader lock", f.item("Leader"), javaLeaderLock)
	keys := []string{}
	for _, l := range f.leases() {
		keys = append(keys, l.Key)
	}
	assigned := f.item(keys[0])
	checkShape(t, "lease assigned by the leader (W8)", assigned, javaLease)
	if attrStr(assigned, "leaseOwner") != "g1" || assigned["checkpointOwner"] != nil {
		t.Errorf("assigned lease: leaseOwner %s checkpointOwner %v", attrStr(assigned, "leaseOwner"), assigned["checkpointOwner"])
	}

	// a second worker: g1's leader moves one lease to it gracefully
	before := map[string]int64{}
	for _, k := range keys {
		before[k] = attrNum(f.item(k), "leaseCounter")
	}
	g2 := f.start("g2", nil)
	var pending map[string]types.AttributeValue
	waitFor(t, 120*time.Second, "a lease with a hand-off pending (checkpointOwner)", func() bool {
		for _, k := range keys {
			if it := f.item(k); attrStr(it, "checkpointOwner") != "" {
				pending = it
				return true
			}
		}
		return false
	}, g1, g2)
	moved := attrStr(pending, "leaseKey")
	checkShape(t, "lease with a hand-off pending (W9)", pending, javaLease)
	if attrStr(pending, "leaseOwner") != "g2" || attrStr(pending, "checkpointOwner") != "g1" {
		t.Errorf("pending hand-off: leaseOwner %s checkpointOwner %s, want g2 and g1", attrStr(pending, "leaseOwner"), attrStr(pending, "checkpointOwner"))
	}
	waitFor(t, 60*time.Second, "the hand-off of "+moved+" transferred (W8 by g1)", func() bool {
		it := f.item(moved)
		return attrStr(it, "leaseOwner") == "g2" && it["checkpointOwner"] == nil
	}, g1, g2)
	done := f.item(moved)
	checkShape(t, "lease after the hand-off transfer (W8)", done, javaLease)
	if n := attrNum(done, "leaseCounter"); n <= attrNum(pending, "leaseCounter") {
		t.Errorf("the transfer did not raise leaseCounter: %d after %d (before the hand-off %d)", n, attrNum(pending, "leaseCounter"), before[moved])
	}
	checkShape(t, "WorkerMetricStats of g2", f.item("g2"), javaWorkerMetricStats)
}

// checkOwnerIndex compares the lease table's LeaseOwnerToLeaseKeyIndex with
// Java's (DynamoDBLeaseRefresher.createLeaseOwnerToLeaseKeyIndexIfNotExists:
// HASH leaseOwner S, RANGE leaseKey S, KEYS_ONLY).
func checkOwnerIndex(t *testing.T, e *env) {
	t.Helper()
	out, err := e.ddb.DynamoDB().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(e.app)})
	if err != nil {
		t.Fatal(err)
	}
	attrTypes := map[string]string{}
	for _, a := range out.Table.AttributeDefinitions {
		attrTypes[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) != "LeaseOwnerToLeaseKeyIndex" {
			continue
		}
		var ks []string
		for _, k := range g.KeySchema {
			ks = append(ks, fmt.Sprintf("%s %s %s", k.KeyType, aws.ToString(k.AttributeName), attrTypes[aws.ToString(k.AttributeName)]))
		}
		if got := strings.Join(ks, ", "); got != "HASH leaseOwner S, RANGE leaseKey S" || g.Projection.ProjectionType != "KEYS_ONLY" {
			t.Errorf("LeaseOwnerToLeaseKeyIndex: key %s, projection %s; Java: HASH leaseOwner S, RANGE leaseKey S, KEYS_ONLY", got, g.Projection.ProjectionType)
		}
		return
	}
	t.Errorf("no LeaseOwnerToLeaseKeyIndex on %s", e.app)
}
