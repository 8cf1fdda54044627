package testutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRepoRootFindsGoMod(t *testing.T) {
	root := RepoRoot(t)
	_, err := os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "proto", "snakepit_bridge.proto"))
}
