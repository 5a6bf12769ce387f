package properties

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// keyTableEnd closes a generated key table in docs/configuration.md.
const keyTableEnd = "<!-- end of generated key table -->"

// keyTableStartRE opens a generated key table and names its section.
var keyTableStartRE = regexp.MustCompile(`<!-- generated key table: section "([^"]+)" \(make docs\); do not edit -->`)

// UpdateKeyTables returns doc (docs/configuration.md) with the key table of
// every section regenerated from the registry. Each section must have its
// markers exactly once:
//
//	<!-- generated key table: section "daemon" (make docs); do not edit -->
//	<!-- end of generated key table -->
func UpdateKeyTables(doc []byte) ([]byte, error) {
	s := string(doc)
	var out strings.Builder
	seen := map[string]bool{}
	for {
		loc := keyTableStartRE.FindStringSubmatchIndex(s)
		if loc == nil {
			break
		}
		sec := s[loc[2]:loc[3]]
		if !slices.Contains(sections, sec) || seen[sec] {
			return nil, fmt.Errorf("key table marker for unknown or repeated section %q", sec)
		}
		seen[sec] = true
		end := strings.Index(s[loc[1]:], keyTableEnd)
		if end < 0 {
			return nil, fmt.Errorf("key table of section %q has no end marker %s", sec, keyTableEnd)
		}
		out.WriteString(s[:loc[1]])
		out.WriteString("\n" + keyTable(sec))
		s = s[loc[1]+end:]
	}
	out.WriteString(s)
	for _, sec := range sections {
		if !seen[sec] {
			return nil, fmt.Errorf("no key table markers for section %q", sec)
		}
	}
	return []byte(out.String()), nil
}

// keyTable renders the Markdown table of one section's keys.
func keyTable(sec string) string {
	var b strings.Builder
	b.WriteString("| key | type | default | meaning |\n|---|---|---|---|\n")
	for _, k := range registry {
		if k.section == sec {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", keyCell(k), typeCell(k), defaultCell(k), meaningCell(k))
		}
	}
	return b.String()
}

func keyCell(k keySpec) string {
	cell := "`" + displayName(k.name) + "`"
	var alts []string
	for alias, canonical := range aliases {
		if canonical == k.name {
			alts = append(alts, "`"+alias+"`")
		}
	}
	slices.Sort(alts)
	if len(alts) > 0 {
		cell += " (alias " + strings.Join(alts, ", ") + ")"
	}
	if k.extension {
		cell += " (extension)"
	}
	return cell
}

func typeCell(k keySpec) string {
	if k.required {
		return k.typ + ", **required**"
	}
	return k.typ
}

func defaultCell(k keySpec) string {
	switch {
	case k.defDoc != "":
		return k.defDoc
	case k.def == "":
		return "—"
	}
	if _, err := strconv.ParseFloat(k.def, 64); err == nil || k.def == "true" || k.def == "false" {
		return k.def
	}
	return "`" + k.def + "`"
}

func meaningCell(k keySpec) string {
	if k.inert && k.doc != "" {
		return "accepted, **no effect** (warns): " + k.doc
	} else if k.inert {
		return "accepted, **no effect** (warns)"
	}
	return k.doc
}
