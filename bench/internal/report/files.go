package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFiles writes a result's three files in dir (created if missing):
// base.json (v, indented), base.md (md) and, when plot is not nil, the PNG
// plot draws at base.png (or at base-lag.png: plot gets the path to write
// and may pick its own name under dir).
//
// Each workload that keeps files (compare, scale) writes them through here,
// so they all come out the same way: JSON first, a failed plot reported as
// "plot: ..." after the JSON and the Markdown are safe.
func WriteFiles(dir, base string, v any, md string, plot func(path string) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, base)
	if err := os.WriteFile(p+".json", b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(p+".md", []byte(md), 0o644); err != nil {
		return err
	}
	if plot != nil {
		if err := plot(p + ".png"); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	return nil
}
