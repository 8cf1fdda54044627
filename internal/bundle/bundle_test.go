package bundle

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func tree(v string) fstest.MapFS {
	return fstest.MapFS{
		"python/grpc_server.py":       {Data: []byte("print('server " + v + "')")},
		"python/pkg/__init__.py":      {Data: []byte("")},
		"python/pkg/sub/module.py":    {Data: []byte("x = 1")},
		"other/not_in_the_bundle.txt": {Data: []byte("no")},
	}
}

func TestExtract(t *testing.T) {
	root := t.TempDir()
	dir, err := Extract(tree("1"), "python", "bridge", root)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "grpc_server.py"))
	require.NoError(t, err)
	require.Equal(t, "print('server 1')", string(b))
	require.FileExists(t, filepath.Join(dir, "pkg", "__init__.py"))
	require.FileExists(t, filepath.Join(dir, "pkg", "sub", "module.py"))
	require.NoFileExists(t, filepath.Join(dir, "not_in_the_bundle.txt"))
	st, err := os.Stat(filepath.Join(dir, "pkg", "sub", "module.py"))
	require.NoError(t, err)
	require.Zero(t, st.Mode().Perm()&0o222, "read-only afterwards")

	again, err := Extract(tree("1"), "python", "bridge", root)
	require.NoError(t, err)
	require.Equal(t, dir, again, "the same content is the same directory")
	other, err := Extract(tree("2"), "python", "bridge", root)
	require.NoError(t, err)
	require.NotEqual(t, dir, other, "new content, a new version")

	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary copies left")
}

func TestExtractConcurrently(t *testing.T) {
	root := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 16)
	errs := make([]error, 16)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Extract(tree("c"), "python", "bridge", root)
		}()
	}
	wg.Wait()
	for i := range dirs {
		require.NoError(t, errs[i])
		require.Equal(t, dirs[0], dirs[i])
	}
	require.FileExists(t, filepath.Join(dirs[0], ".complete"))
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1, "one copy, no temporary ones left")
}

func TestCacheRootMustBeSafe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	t.Setenv(EnvCacheDir, dir)
	got, err := CacheRoot()
	require.NoError(t, err)
	require.Equal(t, dir, got)
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())

	require.NoError(t, os.Chmod(dir, 0o777))
	_, err = CacheRoot()
	require.ErrorContains(t, err, "writable by others")

	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(t.TempDir(), link))
	t.Setenv(EnvCacheDir, link)
	_, err = CacheRoot()
	require.ErrorContains(t, err, "not a directory")
}
