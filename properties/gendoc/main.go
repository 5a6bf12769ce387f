// Command gendoc regenerates the key tables of docs/configuration.md from
// the properties key registry: go run ./properties/gendoc docs/configuration.md
// (run by `go generate ./properties` and `make docs`).
package main

import (
	"fmt"
	"os"

	"github.com/multilangd/multilangd/properties"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendoc docs/configuration.md")
		os.Exit(2)
	}
	if err := update(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func update(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := properties.UpdateKeyTables(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}
