package properties

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// parseInt parses a trimmed decimal integer within [min, max]. Java's
// beanutils turns anything unparsable into 0; we reject it.
func parseInt(v string, min, max int64) (int64, error) {
	s := strings.TrimSpace(v)
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
	if err != nil || s == "" || strings.HasPrefix(s, "+-") {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("number out of range")
		}
		return 0, fmt.Errorf("not a decimal integer (Java would silently use 0 or the default)")
	}
	if n < min || n > max {
		return 0, rangeErr(min, max)
	}
	return n, nil
}

func rangeErr(min, max int64) error {
	switch {
	case max >= math.MaxInt32:
		return fmt.Errorf("must be >= %d", min)
	case min == math.MinInt64 || min == math.MinInt32:
		return fmt.Errorf("must be <= %d", max)
	default:
		return fmt.Errorf("must be between %d and %d", min, max)
	}
}

// parseFloat parses a trimmed finite decimal number.
func parseFloat(v string) (float64, error) {
	s := strings.TrimSpace(v)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xXpP_") {
		return 0, fmt.Errorf("not a decimal number (Java would silently use 0 or the default)")
	}
	return f, nil
}

// parseBool accepts Java beanutils' words case-insensitively. trimmed reports
// whether surrounding whitespace had to be removed (Java reads such a value as
// false).
func parseBool(v string) (b, trimmed bool, err error) {
	s := strings.TrimSpace(v)
	trimmed = s != v
	switch strings.ToLower(s) {
	case "true", "yes", "y", "on", "1":
		return true, trimmed, nil
	case "false", "no", "n", "off", "0":
		return false, trimmed, nil
	}
	return false, trimmed, fmt.Errorf("not a boolean (want true/false, yes/no, y/n, on/off or 1/0; Java would silently use false)")
}

// parseEnum upper-cases the trimmed value and matches it against allowed.
func parseEnum(v string, allowed ...string) (string, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	for _, a := range allowed {
		if s == a {
			return a, nil
		}
	}
	return "", fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
}

var isoDurationRE = regexp.MustCompile(`^([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?$`)

// parseISODuration parses java.time.Duration.parse syntax (PnDTnHnMn.nS,
// case-insensitive); negative durations are rejected like Java's converter.
func parseISODuration(v string) (time.Duration, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	m := isoDurationRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("not an ISO-8601 duration such as PT15M, PT12H or P1D")
	}
	var total float64
	add := func(part string, unit time.Duration) error {
		if part == "" {
			return nil
		}
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return fmt.Errorf("duration component %q out of range", part)
		}
		total += float64(n) * float64(unit)
		return nil
	}
	for _, p := range []struct {
		s string
		u time.Duration
	}{{m[2], 24 * time.Hour}, {m[4], time.Hour}, {m[5], time.Minute}, {m[6], time.Second}} {
		if err := add(p.s, p.u); err != nil {
			return 0, err
		}
	}
	if m[7] != "" {
		frac, _ := strconv.ParseFloat("0."+m[7], 64)
		if strings.HasPrefix(m[6], "-") {
			frac = -frac
		}
		total += frac * float64(time.Second)
	}
	if m[1] == "-" {
		total = -total
	}
	if total < 0 {
		return 0, fmt.Errorf("duration must not be negative")
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("duration too large")
	}
	return time.Duration(total), nil
}

// splitDimensions mirrors Java's list converter for metricsEnabledDimensions:
// items are separated by any character other than letters, digits, '.' and
// '-'; double quotes group.
func splitDimensions(v string) []string {
	var (
		out   []string
		cur   strings.Builder
		quote bool
	)
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range v {
		switch {
		case r == '"':
			if quote {
				flush()
			}
			quote = !quote
		case quote:
			cur.WriteRune(r)
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			cur.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return out
}

// parseTags parses "k1=v1,k2=v2". Items without exactly one '=' are returned
// as skipped (Java skips them with a warning).
func parseTags(v string) (tags map[string]string, skipped []string) {
	tags = map[string]string{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kv := strings.Split(item, "=")
		if len(kv) != 2 {
			skipped = append(skipped, item)
			continue
		}
		tags[strings.TrimSpace(kv[0])] = strings.TrimSpace(kv[1])
	}
	return tags, skipped
}

// levenshtein is the edit distance, for "did you mean" suggestions.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
