package snakepit

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The Go module, the Python package and the changelog name one release.
func TestVersionsAgree(t *testing.T) {
	py, err := os.ReadFile(filepath.Join("..", "..", "priv", "python", "snakepit_bridge", "version.py"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^__version__ = "([^"]+)"$`).FindSubmatch(py)
	require.NotNil(t, m, "version.py has no __version__")
	require.Equal(t, Version, string(m[1]), "snakepit_bridge.__version__")

	changelog, err := os.ReadFile(filepath.Join("..", "..", "CHANGELOG.md"))
	require.NoError(t, err)
	rel := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$`).FindSubmatch(changelog)
	require.NotNil(t, rel, "CHANGELOG.md has no release section (## [x.y.z] - yyyy-mm-dd)")
	require.Equal(t, Version, string(rel[1]), "the newest release in CHANGELOG.md")
}
