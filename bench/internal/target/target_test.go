package target

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindRoot(t *testing.T) {
	root, bench, err := FindRoot("")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Join(root, "bench") != bench || !IsBenchModule(bench) {
		t.Fatalf("root %s bench %s", root, bench)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
}
