package instance

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveDefaultsAndPersistentToken(t *testing.T) {
	t.Setenv(EnvName, "")
	t.Setenv(EnvToken, "")
	data := t.TempDir()
	a, err := Resolve(data, "", "")
	require.NoError(t, err)
	require.Equal(t, DefaultName, a.Name)
	require.Equal(t, filepath.Join(data, DefaultName), a.Dir)
	require.Len(t, a.Token, 32)
	st, err := os.Stat(filepath.Join(a.Dir, "token"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	b, err := Resolve(data, "", "")
	require.NoError(t, err)
	require.Equal(t, a.Token, b.Token, "a restart of the instance keeps its token")

	other, err := Resolve(data, "other", "")
	require.NoError(t, err)
	require.NotEqual(t, a.Token, other.Token, "two instances never share a token")
	require.Equal(t, filepath.Join(data, "other", "processes.db"), other.RegistryPath())
}

func TestResolveConfiguredAndEnv(t *testing.T) {
	data := t.TempDir()
	t.Setenv(EnvName, "from-env")
	t.Setenv(EnvToken, "tok_env")
	i, err := Resolve(data, "", "")
	require.NoError(t, err)
	require.Equal(t, Instance{Name: "from-env", Token: "tok_env", Dir: filepath.Join(data, "from-env")}, i)

	i, err = Resolve(data, "cfg", "tok-cfg")
	require.NoError(t, err)
	require.Equal(t, "cfg", i.Name)
	require.Equal(t, "tok-cfg", i.Token)
	_, err = os.Stat(filepath.Join(i.Dir, "token"))
	require.ErrorIs(t, err, os.ErrNotExist, "a configured token is not written to disk")
}

func TestResolveRejectsUnsafeNames(t *testing.T) {
	t.Setenv(EnvName, "")
	t.Setenv(EnvToken, "")
	for _, tc := range []struct{ name, token string }{
		{"../up", ""}, {"a b", ""}, {"ok", "tok en"}, {"ok", "--snakepit-run-id"},
	} {
		_, err := Resolve(t.TempDir(), tc.name, tc.token)
		require.Error(t, err, "%q/%q", tc.name, tc.token)
	}
}

func TestConcurrentFirstUseAgreesOnOneToken(t *testing.T) {
	t.Setenv(EnvName, "")
	t.Setenv(EnvToken, "")
	data := t.TempDir()
	var wg sync.WaitGroup
	tokens := make([]string, 16)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, err := Resolve(data, "race", "")
			if err == nil {
				tokens[i] = inst.Token
			}
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		require.Equal(t, tokens[0], tok)
		require.NotEmpty(t, tok)
	}
}

func TestDataDirOrder(t *testing.T) {
	t.Setenv(EnvDataDir, "/env/dir")
	require.Equal(t, "/cfg", DataDir("/cfg"))
	require.Equal(t, "/env/dir", DataDir(""))
	t.Setenv(EnvDataDir, "")
	t.Setenv("XDG_STATE_HOME", "/xdg")
	require.Equal(t, "/xdg/snakepit", DataDir(""))
}
