// Package instance resolves a deployment's identity on this host: its name,
// its token and its state directory. Every worker command line carries the
// name and token; the process registry lives in the directory.
//
// The token is what makes "ours" checkable: a process is only ever killed as
// an orphan or a rogue when its command line carries this instance's token.
// When none is configured, a random token is made on first use and kept in
// <dir>/token (mode 0600), so restarts of one instance share it while two
// instances never do.
package instance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/snakepit-go/snakepit/internal/names"
)

// DefaultName is the instance name when none is configured.
const DefaultName = "default"

// Env names the variables that configure an instance.
const (
	EnvName    = "SNAKEPIT_INSTANCE_NAME"
	EnvToken   = "SNAKEPIT_INSTANCE_TOKEN"
	EnvDataDir = "SNAKEPIT_DATA_DIR"
)

// Instance is one resolved deployment identity.
type Instance struct {
	Name  string
	Token string
	// Dir is <data dir>/<name>, created with mode 0700.
	Dir string
}

// RegistryPath is the process registry's bbolt file.
func (i Instance) RegistryPath() string { return filepath.Join(i.Dir, "processes.db") }

// DataDir returns the data directory: configured, else $SNAKEPIT_DATA_DIR,
// else $XDG_STATE_HOME/snakepit, else ~/.local/state/snakepit, else a
// per-user directory under the system temp directory.
func DataDir(configured string) string {
	if configured != "" {
		return configured
	}
	if d := os.Getenv(EnvDataDir); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "snakepit")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "snakepit")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("snakepit-%d", os.Getuid()))
}

// Resolve fills the name (configured, $SNAKEPIT_INSTANCE_NAME, DefaultName)
// and the token (configured, $SNAKEPIT_INSTANCE_TOKEN, or the instance's
// token file, made on first use), checks both are command-line safe, and
// creates the instance directory under dataDir.
func Resolve(dataDir, name, token string) (Instance, error) {
	name, dir, err := Locate(dataDir, name)
	if err != nil {
		return Instance{}, err
	}
	if token == "" {
		token = os.Getenv(EnvToken)
	}
	if token != "" && !names.Valid(token) {
		return Instance{}, fmt.Errorf("instance token: only letters, digits, '-' and '_' are allowed")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Instance{}, fmt.Errorf("instance directory: %w", err)
	}
	if token == "" {
		var err error
		if token, err = fileToken(filepath.Join(dir, "token")); err != nil {
			return Instance{}, err
		}
	}
	return Instance{Name: name, Token: token, Dir: dir}, nil
}

// Locate names an instance (configured, $SNAKEPIT_INSTANCE_NAME,
// DefaultName) and its directory under dataDir (see DataDir), without
// making anything: for tools that act on an instance a host made.
func Locate(dataDir, name string) (string, string, error) {
	if name == "" {
		name = os.Getenv(EnvName)
	}
	if name == "" {
		name = DefaultName
	}
	if !names.Valid(name) {
		return "", "", fmt.Errorf("instance name %q: only letters, digits, '-' and '_' are allowed", name)
	}
	return name, filepath.Join(DataDir(dataDir), name), nil
}

// ReadToken returns the token kept in an instance directory, if any (for
// tools such as `snakepit cleanup` that act for a host that is gone).
func ReadToken(dir string) (string, error) { return readSecret(filepath.Join(dir, "token")) }

// readSecret reads a file holding one token.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if !names.Valid(t) {
		return "", fmt.Errorf("token file %s holds no valid token", path)
	}
	return t, nil
}

// fileToken reads the instance's token file, or creates it.
func fileToken(path string) (string, error) {
	return SecretFile(path, func() string {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported systems
		return hex.EncodeToString(b[:])
	})
}

// SecretFile reads the token kept in the file at path, or, when there is
// none, makes one with newSecret and keeps it there (mode 0600). The token
// is written to a private temporary file and linked into place, so a reader
// never sees a partial token and two processes creating it at once agree on
// the first link.
func SecretFile(path string, newSecret func() string) (string, error) {
	if t, err := readSecret(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return t, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.WriteString(newSecret() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	// Link, not rename: a token already in place is never replaced.
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("token file: %w", err)
	}
	return readSecret(path)
}
