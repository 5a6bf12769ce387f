package properties

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRegistryComplete: every key says what the docs and `validate` need.
func TestRegistryComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range registry {
		if seen[k.name] {
			t.Errorf("%s: listed twice", k.name)
		}
		seen[k.name] = true
		if !slices.Contains(sections, k.section) {
			t.Errorf("%s: section %q is not in sections", k.name, k.section)
		}
		if k.set == nil || k.typ == "" {
			t.Errorf("%s: no parser or docs type", k.name)
		}
		if k.javaNoOp && !k.inert {
			t.Errorf("%s: javaNoOp without inert", k.name)
		}
		if k.doc == "" && !k.inert {
			t.Errorf("%s: no description", k.name)
		}
		if k.required && k.def != "" {
			t.Errorf("%s: required key with a default", k.name)
		}
	}
	for alias, canonical := range aliases {
		if !seen[canonical] || seen[alias] {
			t.Errorf("alias %s -> %s: the target must be a key and the alias not", alias, canonical)
		}
	}
	for prefix, inner := range beanPrefixes {
		for _, k := range inner {
			if !seen[k] {
				t.Errorf("%s%s: not a key", prefix, k)
			}
		}
	}
	for k := range legacyKeys {
		if seen[k] {
			t.Errorf("%s: both a key and an ignored 1.x key", k)
		}
	}
}

// TestDefaultsApply: each registry default is a value its own parser
// accepts without a warning (Defaults panics otherwise).
func TestDefaultsApply(t *testing.T) {
	for _, k := range registry {
		if k.def == "" {
			continue
		}
		l := &loader{file: "registry", cfg: &Config{}}
		if err := k.set(l, Entry{Key: k.name, Value: k.def}); err != nil {
			t.Errorf("%s: default %q: %v", k.name, k.def, err)
		}
		if len(l.cfg.Warnings) > 0 {
			t.Errorf("%s: default %q warns: %v", k.name, k.def, l.cfg.Warnings)
		}
	}
}

// TestConfigurationDocIsGenerated: the key tables of docs/configuration.md
// are the registry's. Run `make docs` after changing a key.
func TestConfigurationDocIsGenerated(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := UpdateKeyTables(doc)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(doc) {
		t.Fatal("docs/configuration.md key tables are stale: run `make docs` (go generate ./properties)")
	}
	for _, k := range KnownKeys() {
		if !strings.Contains(string(doc), "| `"+displayName(k)+"`") {
			t.Errorf("docs/configuration.md has no row for %s", k)
		}
	}
	for k := range legacyKeys {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md does not mention the ignored 1.x key %s", k)
		}
	}
}

// TestSettingsListEveryKey: `validate` shows every key that stores a value,
// in polling or in fan-out mode.
func TestSettingsListEveryKey(t *testing.T) {
	polling := "retrievalMode = POLLING\ninitialPositionInStreamExtended = 1\n" +
		"workerMetricsBillingMode = PROVISIONED\ncoordinatorStateBillingMode = PROVISIONED\n" +
		"workerMetricsTags = a=1\ncoordinatorStateTags = b=2\n"
	listed := map[string]bool{}
	for _, extra := range []string{polling, "retrievalMode = FANOUT\nstreams = a, b\n"} {
		seen := map[string]bool{}
		for _, s := range mustParse(t, extra).Settings() {
			if seen[s.Key] {
				t.Errorf("%s listed twice", s.Key)
			}
			seen[s.Key], listed[s.Key] = true, true
		}
	}
	for _, k := range registry {
		if k.show != nil && !listed[displayName(k.name)] {
			t.Errorf("validate does not list %s", k.name)
		}
	}
}

// TestOtherDocsDefaults: a Markdown table elsewhere in docs/ whose second
// column is "default" agrees with the registry for every key it lists.
func TestOtherDocsDefaults(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	unquote := strings.NewReplacer("`", "", "*", "")
	for _, f := range files {
		if filepath.Base(f) == "configuration.md" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inDefaults := false
		for _, line := range strings.Split(string(b), "\n") {
			cells := strings.Split(line, "|")
			if len(cells) < 4 || !strings.HasPrefix(line, "|") {
				inDefaults = false
				continue
			}
			if strings.TrimSpace(cells[2]) == "default" {
				inDefaults = true
				continue
			}
			k, ok := knownKeys[unquote.Replace(strings.TrimSpace(cells[1]))]
			if !inDefaults || !ok {
				continue
			}
			got := unquote.Replace(strings.TrimSpace(cells[2]))
			want := strings.Fields(unquote.Replace(defaultCell(k)))[0]
			if !strings.HasPrefix(got, want) {
				t.Errorf("%s: %s default %q, the registry says %q", filepath.Base(f), k.name, got, defaultCell(k))
			}
		}
	}
}

// TestCompatibilityListsInertKeys: docs/compatibility.md names every inert
// key, one by one or through the group it belongs to.
func TestCompatibilityListsInertKeys(t *testing.T) {
	b, err := os.ReadFile("../docs/compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	groups := []struct {
		phrase string
		member func(keySpec) bool
	}{
		{"the worker-utilization (3.x) keys", func(k keySpec) bool { return k.section == secUtilization }},
		{"the 3.x metadata-table keys", func(k keySpec) bool { return k.section == secTables }},
		{"the graceful hand-off keys", func(k keySpec) bool { return strings.Contains(strings.ToLower(k.name), "gracefulleasehandoff") }},
	}
	for _, k := range registry {
		if !k.inert || strings.Contains(doc, "`"+k.name+"`") {
			continue
		}
		covered := false
		for _, g := range groups {
			covered = covered || (g.member(k) && strings.Contains(doc, g.phrase))
		}
		if !covered {
			t.Errorf("docs/compatibility.md does not list the inert key %s", k.name)
		}
	}
}
