package leader

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
)

// recorder records every write request, in the lock client's terms.
type recorder struct {
	DynamoAPI
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) add(op, cond, update string, names map[string]string, values map[string]types.AttributeValue, item map[string]types.AttributeValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, fmt.Sprintf("%s cond=%q update=%q names=%s values=%s item=%s", op, cond, update, render(names), renderAV(values), renderAV(item)))
}

func (r *recorder) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.add("PutItem", aws.ToString(in.ConditionExpression), "", in.ExpressionAttributeNames, in.ExpressionAttributeValues, in.Item)
	return r.DynamoAPI.PutItem(ctx, in, o...)
}

func (r *recorder) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.add("UpdateItem", aws.ToString(in.ConditionExpression), aws.ToString(in.UpdateExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues, in.Key)
	return r.DynamoAPI.UpdateItem(ctx, in, o...)
}

func (r *recorder) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.add("DeleteItem", aws.ToString(in.ConditionExpression), "", in.ExpressionAttributeNames, in.ExpressionAttributeValues, in.Key)
	return r.DynamoAPI.DeleteItem(ctx, in, o...)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func render(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+":"+v)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// renderAV renders S values as S:"…", UUIDs as S:<uuid> so that the
// golden strings stay stable.
func renderAV(m map[string]types.AttributeValue) string {
	var parts []string
	for k, v := range m {
		s, ok := v.(*types.AttributeValueMemberS)
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("%s:%T", k, v))
		case uuid.Validate(s.Value) == nil:
			parts = append(parts, k+":S<uuid>")
		default:
			parts = append(parts, fmt.Sprintf("%s:S%q", k, s.Value))
		}
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// TestRequestsAreTheLockClients: every write, request for request, with the
// expressions, names and values of AmazonDynamoDBLockClient 1.4 (acquire
// absent / released / stale, heartbeat, release).
func TestRequestsAreTheLockClients(t *testing.T) {
	f, tab := fakeTable(t)
	rec := &recorder{DynamoAPI: f}
	c := newFakeClock()
	a := newTestDecider(t, rec, tab, "a", c)
	ctx := ctxT(t, 10*time.Second)
	const item = `{entityType:S"LEADER",leaseDuration:S"120000",leaseKey:S"Leader",ownerName:S"a",recordVersionNumber:S<uuid>}`
	const key = `{leaseKey:S"Leader"}`
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"acquire absent", func() { a.IsLeader(ctx) },
			[]string{`PutItem cond="attribute_not_exists(#pk)" update="" names={#pk:leaseKey} values={} item=` + item}},
		{"heartbeat", func() { a.heartbeatOnce(ctx) },
			[]string{`UpdateItem cond="attribute_exists(#pk) AND #rvn = :rvn AND #on = :on" update="SET #ld = :ld, #rvn = :newRvn" names={#ld:leaseDuration,#on:ownerName,#pk:leaseKey,#rvn:recordVersionNumber} values={:ld:S"120000",:newRvn:S<uuid>,:on:S"a",:rvn:S<uuid>} item=` + key}},
		{"release", func() { a.ReleaseLeadershipIfHeld(ctx) },
			[]string{`DeleteItem cond="attribute_exists(#pk) AND #rvn = :rvn AND #on = :on" update="" names={#on:ownerName,#pk:leaseKey,#rvn:recordVersionNumber} values={:on:S"a",:rvn:S<uuid>} item=` + key}},
		{"acquire released", func() {
			it := javaLockItem(tab, "java", uuid.NewString(), "120000")
			it["isReleased"] = &types.AttributeValueMemberS{Value: "1"}
			putItem(t, f, tab, it)
			a.IsLeader(ctx)
		}, []string{`PutItem cond="attribute_exists(#pk) AND #ir = :ir" update="" names={#ir:isReleased,#pk:leaseKey} values={:ir:S"1"} item=` + item}},
		{"acquire stale", func() {
			a.ReleaseLeadershipIfHeld(ctx)
			putJavaLock(t, f, tab, "java", uuid.NewString(), "120000")
			rec.take()
			c.Advance(30 * time.Second)
			a.IsLeader(ctx) // first sight
			c.Advance(120*time.Second + time.Millisecond)
			a.IsLeader(ctx)
		}, []string{`PutItem cond="attribute_exists(#pk) AND #rvn = :rvn" update="" names={#pk:leaseKey,#rvn:recordVersionNumber} values={:rvn:S<uuid>} item=` + item}},
	}
	for _, st := range steps {
		st.do()
		got := rec.take()
		if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", st.name, got, st.want)
		}
	}
}
