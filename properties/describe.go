package properties

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Setting is one resolved configuration value for display.
type Setting struct {
	// Section groups settings ("daemon", "stream", ...).
	Section string
	// Key is the properties key (canonical spelling).
	Key string
	// Value is the resolved value, secrets redacted.
	Value string
	// Line is where the value was set; 0 = default or derived.
	Line int
}

// Settings lists every resolved setting in registry order, for `validate`
// and logs. Secrets in credentials-provider arguments are redacted.
func (c *Config) Settings() []Setting {
	var out []Setting
	for _, k := range registry {
		if k.show == nil || (k.listed != nil && !k.listed(c)) {
			continue
		}
		v := k.show(c)
		if v == "" {
			v = k.unset
		}
		out = append(out, Setting{Section: k.section, Key: displayName(k.name), Value: v, Line: c.Lines[k.name]})
	}
	return out
}

// displayName is the key as users write it: the credentials keys are
// canonical in lower camel case (Java's prefix rewrite) but documented as
// AwsCredentialsProvider.
func displayName(key string) string {
	if strings.HasPrefix(key, keyCredentials) {
		return "A" + key[1:]
	}
	return key
}

// isoString formats d as an ISO-8601 duration (P1D, PT12H, PT1M30.5S).
func isoString(d time.Duration) string {
	if d == 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
	}
	return b.String()
}
