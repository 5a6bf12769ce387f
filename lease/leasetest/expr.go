package leasetest

import (
	"fmt"
	"math/big"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// This file evaluates the DynamoDB expression subset a lease table needs:
//
//	condition: a AND b, a OR b, NOT a, ( a ), attribute_exists(p),
//	           attribute_not_exists(p), p = v, <>, <, <=, >, >=
//	update:    SET p = v, p = v + w, p = v - w, p = if_not_exists(p, v)
//	           REMOVE p, ...; ADD p v, ...; DELETE p v, ...
//
// where p is an attribute name or #name and v a :value or a path. Anything
// else is a ValidationException, so a store that starts using more of the
// language fails loudly here instead of passing on a wrong answer.

type token struct {
	kind string // "name", "punct", "eof"
	text string
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '#' || c == ':' || c == '_' || unicode.IsLetter(c):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] == '-' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, token{"name", s[i:j]})
			i = j
		case strings.HasPrefix(s[i:], "<>") || strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">="):
			out = append(out, token{"punct", s[i : i+2]})
			i += 2
		case strings.ContainsRune("()=,<>+-", c):
			out = append(out, token{"punct", s[i : i+1]})
			i++
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
		}
	}
	return append(out, token{kind: "eof"}), nil
}

// exprCtx resolves #names and :values and records which were used.
type exprCtx struct {
	names     map[string]string
	values    map[string]types.AttributeValue
	usedNames map[string]bool
	usedVals  map[string]bool
}

func (x *exprCtx) attr(tok string) (string, error) {
	if strings.HasPrefix(tok, "#") {
		n, ok := x.names[tok]
		if !ok {
			return "", fmt.Errorf("undefined expression attribute name %s", tok)
		}
		x.usedNames[tok] = true
		return n, nil
	}
	if strings.HasPrefix(tok, ":") {
		return "", fmt.Errorf("a value %s where an attribute name is expected", tok)
	}
	return tok, nil
}

// unused returns an error naming a supplied name or value no expression used
// (DynamoDB rejects those).
func (x *exprCtx) unused() error {
	for n := range x.names {
		if !x.usedNames[n] {
			return fmt.Errorf("unused expression attribute name %s", n)
		}
	}
	for v := range x.values {
		if !x.usedVals[v] {
			return fmt.Errorf("unused expression attribute value %s", v)
		}
	}
	return nil
}

type parser struct {
	toks []token
	pos  int
	x    *exprCtx
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != "eof" {
		p.pos++
	}
	return t
}

func (p *parser) keyword(kw string) bool {
	if t := p.peek(); t.kind == "name" && strings.EqualFold(t.text, kw) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(punct string) error {
	if t := p.next(); t.kind != "punct" || t.text != punct {
		return fmt.Errorf("expected %q, got %q", punct, t.text)
	}
	return nil
}

// operand is a :value or an attribute path, resolved against item.
type operand func(item map[string]types.AttributeValue) (types.AttributeValue, bool)

func (p *parser) operand() (operand, error) {
	t := p.next()
	if t.kind != "name" {
		return nil, fmt.Errorf("expected an operand, got %q", t.text)
	}
	if strings.HasPrefix(t.text, ":") {
		v, ok := p.x.values[t.text]
		if !ok {
			return nil, fmt.Errorf("undefined expression attribute value %s", t.text)
		}
		p.x.usedVals[t.text] = true
		return func(map[string]types.AttributeValue) (types.AttributeValue, bool) { return v, true }, nil
	}
	name, err := p.x.attr(t.text)
	if err != nil {
		return nil, err
	}
	return func(item map[string]types.AttributeValue) (types.AttributeValue, bool) {
		v, ok := item[name]
		return v, ok
	}, nil
}

func (p *parser) path() (string, error) {
	t := p.next()
	if t.kind != "name" {
		return "", fmt.Errorf("expected an attribute name, got %q", t.text)
	}
	return p.x.attr(t.text)
}

// condition is a parsed ConditionExpression.
type condition func(item map[string]types.AttributeValue) bool

func parseCondition(s string, x *exprCtx) (condition, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, x: x}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, fmt.Errorf("unexpected %q", t.text)
	}
	return c, nil
}

func (p *parser) or() (condition, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(item map[string]types.AttributeValue) bool { return a(item) || r(item) }
	}
	return l, nil
}

func (p *parser) and() (condition, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(item map[string]types.AttributeValue) bool { return a(item) && r(item) }
	}
	return l, nil
}

func (p *parser) unary() (condition, error) {
	if p.keyword("NOT") {
		c, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(item map[string]types.AttributeValue) bool { return !c(item) }, nil
	}
	if t := p.peek(); t.kind == "punct" && t.text == "(" {
		p.next()
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		return c, p.expect(")")
	}
	if c, ok, err := p.existsFunc(); ok || err != nil {
		return c, err
	}
	return p.comparison()
}

// existsFunc parses attribute_exists(p) or attribute_not_exists(p); ok is
// false when neither comes next.
func (p *parser) existsFunc() (c condition, ok bool, err error) {
	for _, fn := range []string{"attribute_exists", "attribute_not_exists"} {
		if !p.keyword(fn) {
			continue
		}
		if err := p.expect("("); err != nil {
			return nil, true, err
		}
		name, err := p.path()
		if err != nil {
			return nil, true, err
		}
		if err := p.expect(")"); err != nil {
			return nil, true, err
		}
		want := fn == "attribute_exists"
		return func(item map[string]types.AttributeValue) bool {
			_, ok := item[name]
			return ok == want
		}, true, nil
	}
	return nil, false, nil
}

// comparison parses a = b, <>, <, <=, >, >=; a comparison with a missing
// attribute is false.
func (p *parser) comparison() (condition, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.next()
	if op.kind != "punct" || !strings.Contains("= <> < <= > >=", op.text) {
		return nil, fmt.Errorf("expected a comparison, got %q", op.text)
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return func(item map[string]types.AttributeValue) bool {
		a, okA := l(item)
		b, okB := r(item)
		if !okA || !okB {
			return false
		}
		c, comparable := compare(a, b)
		switch op.text {
		case "=":
			return comparable && c == 0
		case "<>":
			return !comparable || c != 0
		case "<":
			return comparable && c < 0
		case "<=":
			return comparable && c <= 0
		case ">":
			return comparable && c > 0
		default:
			return comparable && c >= 0
		}
	}, nil
}

// compare orders two scalar values of the same type; sets and maps compare
// equal or not. comparable is false across types.
func compare(a, b types.AttributeValue) (c int, comparable bool) {
	switch x := a.(type) {
	case *types.AttributeValueMemberS:
		y, ok := b.(*types.AttributeValueMemberS)
		if !ok {
			return 0, false
		}
		return strings.Compare(x.Value, y.Value), true
	case *types.AttributeValueMemberN:
		y, ok := b.(*types.AttributeValueMemberN)
		if !ok {
			return 0, false
		}
		rx, ok1 := new(big.Rat).SetString(x.Value)
		ry, ok2 := new(big.Rat).SetString(y.Value)
		if !ok1 || !ok2 {
			return 0, false
		}
		return rx.Cmp(ry), true
	default:
		if fmt.Sprintf("%T", a) != fmt.Sprintf("%T", b) {
			return 0, false
		}
		if equalValues(a, b) {
			return 0, true
		}
		return 1, true // unordered types: only = and <> are meaningful
	}
}

// action is one parsed UpdateExpression action applied to item in place.
type action func(item map[string]types.AttributeValue) error

// parseUpdate parses an UpdateExpression; key is the table's hash key, which
// no action may touch.
func parseUpdate(s string, x *exprCtx, key string) ([]action, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, x: x}
	var acts []action
	for p.peek().kind != "eof" {
		t := p.next()
		clause := strings.ToUpper(t.text)
		if t.kind != "name" || (clause != "SET" && clause != "REMOVE" && clause != "ADD" && clause != "DELETE") {
			return nil, fmt.Errorf("expected SET, REMOVE, ADD or DELETE, got %q", t.text)
		}
		for {
			name, err := p.path()
			if err != nil {
				return nil, err
			}
			if name == key {
				return nil, fmt.Errorf("cannot update attribute %s: it is part of the key", name)
			}
			a, err := p.action(clause, name)
			if err != nil {
				return nil, err
			}
			acts = append(acts, a)
			if t := p.peek(); t.kind == "punct" && t.text == "," {
				p.next()
				continue
			}
			break
		}
	}
	if len(acts) == 0 {
		return nil, fmt.Errorf("empty update expression")
	}
	return acts, nil
}

func (p *parser) action(clause, name string) (action, error) {
	switch clause {
	case "REMOVE":
		return func(item map[string]types.AttributeValue) error { delete(item, name); return nil }, nil
	case "SET":
		if err := p.expect("="); err != nil {
			return nil, err
		}
		v, err := p.setValue()
		if err != nil {
			return nil, err
		}
		return func(item map[string]types.AttributeValue) error {
			val, err := v(item)
			if err != nil {
				return err
			}
			item[name] = val
			return nil
		}, nil
	default: // ADD, DELETE
		v, err := p.operand()
		if err != nil {
			return nil, err
		}
		return func(item map[string]types.AttributeValue) error {
			arg, _ := v(item)
			cur, exists := item[name]
			res, err := addOrDelete(clause, cur, exists, arg)
			if err != nil {
				return fmt.Errorf("%s %s: %w", clause, name, err)
			}
			if res == nil {
				delete(item, name)
			} else {
				item[name] = res
			}
			return nil
		}, nil
	}
}

// setValue parses v, v + w, v - w or if_not_exists(p, v).
func (p *parser) setValue() (func(map[string]types.AttributeValue) (types.AttributeValue, error), error) {
	if p.keyword("if_not_exists") {
		return p.ifNotExists()
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind != "punct" || (t.text != "+" && t.text != "-") {
		return func(item map[string]types.AttributeValue) (types.AttributeValue, error) {
			v, ok := l(item)
			if !ok {
				return nil, fmt.Errorf("the SET operand refers to a missing attribute")
			}
			return v, nil
		}, nil
	}
	p.next()
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return func(item map[string]types.AttributeValue) (types.AttributeValue, error) {
		a, _ := l(item)
		b, _ := r(item)
		return arithmetic(t.text, a, b)
	}, nil
}

// ifNotExists parses the rest of if_not_exists(p, v).
func (p *parser) ifNotExists() (func(map[string]types.AttributeValue) (types.AttributeValue, error), error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	name, err := p.path()
	if err != nil {
		return nil, err
	}
	if err := p.expect(","); err != nil {
		return nil, err
	}
	def, err := p.operand()
	if err != nil {
		return nil, err
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return func(item map[string]types.AttributeValue) (types.AttributeValue, error) {
		if v, ok := item[name]; ok {
			return v, nil
		}
		v, _ := def(item)
		return v, nil
	}, nil
}

// arithmetic computes a + b or a - b on numbers.
func arithmetic(op string, a, b types.AttributeValue) (types.AttributeValue, error) {
	na, isA := a.(*types.AttributeValueMemberN)
	nb, isB := b.(*types.AttributeValueMemberN)
	if !isA || !isB {
		return nil, fmt.Errorf("arithmetic on a missing or non-number operand")
	}
	x, _ := new(big.Rat).SetString(na.Value)
	y, _ := new(big.Rat).SetString(nb.Value)
	if x == nil || y == nil {
		return nil, fmt.Errorf("invalid number")
	}
	if op == "+" {
		x.Add(x, y)
	} else {
		x.Sub(x, y)
	}
	return &types.AttributeValueMemberN{Value: ratString(x)}, nil
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(38)
}

// addOrDelete applies ADD (numbers, sets) or DELETE (sets); a nil result
// removes the attribute (an emptied set).
func addOrDelete(clause string, cur types.AttributeValue, exists bool, arg types.AttributeValue) (types.AttributeValue, error) {
	switch a := arg.(type) {
	case *types.AttributeValueMemberN:
		if clause != "ADD" {
			return nil, fmt.Errorf("DELETE needs a set")
		}
		if !exists {
			return &types.AttributeValueMemberN{Value: a.Value}, nil
		}
		c, ok := cur.(*types.AttributeValueMemberN)
		if !ok {
			return nil, fmt.Errorf("ADD of a number to a non-number")
		}
		x, _ := new(big.Rat).SetString(c.Value)
		y, _ := new(big.Rat).SetString(a.Value)
		if x == nil || y == nil {
			return nil, fmt.Errorf("invalid number")
		}
		return &types.AttributeValueMemberN{Value: ratString(x.Add(x, y))}, nil
	case *types.AttributeValueMemberSS:
		var have []string
		if exists {
			c, ok := cur.(*types.AttributeValueMemberSS)
			if !ok {
				return nil, fmt.Errorf("string-set operation on a different type")
			}
			have = c.Value
		}
		out := setOp(clause, have, a.Value)
		if len(out) == 0 {
			return nil, nil
		}
		return &types.AttributeValueMemberSS{Value: out}, nil
	case *types.AttributeValueMemberNS:
		var have []string
		if exists {
			c, ok := cur.(*types.AttributeValueMemberNS)
			if !ok {
				return nil, fmt.Errorf("number-set operation on a different type")
			}
			have = c.Value
		}
		out := setOp(clause, have, a.Value)
		if len(out) == 0 {
			return nil, nil
		}
		return &types.AttributeValueMemberNS{Value: out}, nil
	default:
		return nil, fmt.Errorf("%s supports numbers and sets only", clause)
	}
}

func setOp(clause string, have, arg []string) []string {
	in := map[string]bool{}
	for _, v := range arg {
		in[v] = true
	}
	var out []string
	for _, v := range have {
		if clause == "DELETE" && in[v] {
			continue
		}
		out = append(out, v)
		delete(in, v)
	}
	if clause == "ADD" {
		for _, v := range arg {
			if in[v] {
				out = append(out, v)
				delete(in, v)
			}
		}
	}
	return out
}
