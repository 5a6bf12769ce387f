package iac

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// cfnKey and cfnKeySchema mirror the AWS::DynamoDB::Table property shapes,
// which use the DynamoDB API's own names.
type cfnAttr struct {
	AttributeName string
	AttributeType string
}

type cfnKey struct {
	AttributeName string
	KeyType       string
}

type cfnThroughput struct {
	ReadCapacityUnits  int64
	WriteCapacityUnits int64
}

type cfnGSI struct {
	IndexName             string
	KeySchema             []cfnKey
	Projection            struct{ ProjectionType string }
	ProvisionedThroughput *cfnThroughput `json:",omitempty"`
}

type cfnTag struct{ Key, Value string }

// CFNTableProperties is the Properties object of an AWS::DynamoDB::Table
// resource; its field names are CloudFormation's (and DynamoDB's).
type CFNTableProperties struct {
	TableName                        string
	AttributeDefinitions             []cfnAttr
	KeySchema                        []cfnKey
	BillingMode                      string
	ProvisionedThroughput            *cfnThroughput `json:",omitempty"`
	GlobalSecondaryIndexes           []cfnGSI       `json:",omitempty"`
	DeletionProtectionEnabled        bool
	PointInTimeRecoverySpecification *struct{ PointInTimeRecoveryEnabled bool } `json:",omitempty"`
	Tags                             []cfnTag                                   `json:",omitempty"`
}

type cfnResource struct {
	Type       string
	Properties CFNTableProperties
}

// CloudFormation writes the tables as a CloudFormation template fragment:
// {"Resources": {...}} with one AWS::DynamoDB::Table per table.
func CloudFormation(w io.Writer, tables []Table) error {
	res := map[string]cfnResource{}
	for _, t := range tables {
		res[t.LogicalID] = cfnResource{Type: "AWS::DynamoDB::Table", Properties: cfnProps(t)}
	}
	b, err := json.MarshalIndent(map[string]any{"Resources": res}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func cfnProps(t Table) CFNTableProperties {
	in := t.Input
	p := CFNTableProperties{
		TableName:                 aws.ToString(in.TableName),
		BillingMode:               string(in.BillingMode),
		DeletionProtectionEnabled: aws.ToBool(in.DeletionProtectionEnabled),
	}
	for _, a := range in.AttributeDefinitions {
		p.AttributeDefinitions = append(p.AttributeDefinitions, cfnAttr{aws.ToString(a.AttributeName), string(a.AttributeType)})
	}
	p.KeySchema = cfnKeys(in.KeySchema)
	p.ProvisionedThroughput = cfnTP(in.ProvisionedThroughput)
	for _, g := range in.GlobalSecondaryIndexes {
		cg := cfnGSI{IndexName: aws.ToString(g.IndexName), KeySchema: cfnKeys(g.KeySchema), ProvisionedThroughput: cfnTP(g.ProvisionedThroughput)}
		cg.Projection.ProjectionType = string(g.Projection.ProjectionType)
		p.GlobalSecondaryIndexes = append(p.GlobalSecondaryIndexes, cg)
	}
	if t.PITR {
		p.PointInTimeRecoverySpecification = &struct{ PointInTimeRecoveryEnabled bool }{true}
	}
	for _, tag := range sortedTags(in.Tags) {
		p.Tags = append(p.Tags, cfnTag{aws.ToString(tag.Key), aws.ToString(tag.Value)})
	}
	return p
}

func cfnKeys(ks []types.KeySchemaElement) []cfnKey {
	out := make([]cfnKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, cfnKey{aws.ToString(k.AttributeName), string(k.KeyType)})
	}
	return out
}

func cfnTP(tp *types.ProvisionedThroughput) *cfnThroughput {
	if tp == nil {
		return nil
	}
	return &cfnThroughput{aws.ToInt64(tp.ReadCapacityUnits), aws.ToInt64(tp.WriteCapacityUnits)}
}

// Terraform writes the tables as aws_dynamodb_table resources.
func Terraform(w io.Writer, tables []Table) error {
	var b strings.Builder
	for i, t := range tables {
		if i > 0 {
			b.WriteString("\n")
		}
		p := cfnProps(t)
		fmt.Fprintf(&b, "# %s\nresource \"aws_dynamodb_table\" %q {\n", t.Purpose, tfName(t.LogicalID))
		fmt.Fprintf(&b, "  name                        = %q\n", p.TableName)
		fmt.Fprintf(&b, "  billing_mode                = %q\n", p.BillingMode)
		for _, k := range p.KeySchema {
			if k.KeyType == string(types.KeyTypeHash) {
				fmt.Fprintf(&b, "  hash_key                    = %q\n", k.AttributeName)
			} else {
				fmt.Fprintf(&b, "  range_key                   = %q\n", k.AttributeName)
			}
		}
		if tp := p.ProvisionedThroughput; tp != nil {
			fmt.Fprintf(&b, "  read_capacity               = %d\n  write_capacity              = %d\n", tp.ReadCapacityUnits, tp.WriteCapacityUnits)
		}
		fmt.Fprintf(&b, "  deletion_protection_enabled = %t\n", p.DeletionProtectionEnabled)
		for _, a := range p.AttributeDefinitions {
			fmt.Fprintf(&b, "\n  attribute {\n    name = %q\n    type = %q\n  }\n", a.AttributeName, a.AttributeType)
		}
		for _, g := range p.GlobalSecondaryIndexes {
			fmt.Fprintf(&b, "\n  global_secondary_index {\n    name            = %q\n", g.IndexName)
			for _, k := range g.KeySchema {
				if k.KeyType == string(types.KeyTypeHash) {
					fmt.Fprintf(&b, "    hash_key        = %q\n", k.AttributeName)
				} else {
					fmt.Fprintf(&b, "    range_key       = %q\n", k.AttributeName)
				}
			}
			fmt.Fprintf(&b, "    projection_type = %q\n", g.Projection.ProjectionType)
			if tp := g.ProvisionedThroughput; tp != nil {
				fmt.Fprintf(&b, "    read_capacity   = %d\n    write_capacity  = %d\n", tp.ReadCapacityUnits, tp.WriteCapacityUnits)
			}
			b.WriteString("  }\n")
		}
		if p.PointInTimeRecoverySpecification != nil {
			b.WriteString("\n  point_in_time_recovery {\n    enabled = true\n  }\n")
		}
		if len(p.Tags) > 0 {
			b.WriteString("\n  tags = {\n")
			for _, tag := range p.Tags {
				fmt.Fprintf(&b, "    %q = %q\n", tag.Key, tag.Value)
			}
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var camelBoundary = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// tfName turns a logical ID (LeaseTable) into a Terraform name (lease_table).
func tfName(id string) string {
	return strings.ToLower(camelBoundary.ReplaceAllString(id, "${1}_${2}"))
}

// Schema writes the tables as CloudFormation, then as Terraform, each under
// a comment line naming the format.
func Schema(w io.Writer, tables []Table) error {
	if _, err := io.WriteString(w, "# CloudFormation (Resources fragment)\n"); err != nil {
		return err
	}
	if err := CloudFormation(w, tables); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n# Terraform\n"); err != nil {
		return err
	}
	return Terraform(w, tables)
}
