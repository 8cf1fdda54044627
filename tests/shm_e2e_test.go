//go:build unix

package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/shm"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// segments lists the shared-memory segments in dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "q.") || strings.HasPrefix(e.Name(), "r.") {
			out = append(out, e.Name())
		}
	}
	return out
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func TestLargeBinaryPayloadsTravelThroughSharedMemory(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("shm"), Pools: []snakepit.PoolConfig{{Name: "sm", Size: 1}}})
	dir := app.SharedMemoryDir()
	require.NotEmpty(t, dir)
	big, small := randomBytes(t, 4<<20), randomBytes(t, 1000)

	// How the worker got them: a mapped memoryview above the threshold,
	// bytes below; the same bytes either way.
	for _, tc := range []struct {
		data []byte
		typ  string
	}{{big, "memoryview"}, {small, "bytes"}} {
		res, err := app.Execute(t.Context(), "describe_binary", nil, snakepit.WithPool("sm"),
			snakepit.WithBinary(map[string][]byte{"data": tc.data}))
		require.NoError(t, err)
		var got struct {
			Type   string `json:"type"`
			Size   int    `json:"size"`
			SHA256 string `json:"sha256"`
		}
		require.NoError(t, res.Decode(&got))
		sum := sha256.Sum256(tc.data)
		assert.Equal(t, tc.typ, got.Type)
		assert.Equal(t, len(tc.data), got.Size)
		assert.Equal(t, hex.EncodeToString(sum[:]), got.SHA256)
	}

	// A large result comes back through a segment: copied by default, a
	// view with WithZeroCopy, released by the caller.
	res, err := app.Execute(t.Context(), "echo_binary", nil, snakepit.WithPool("sm"), snakepit.WithBinary(map[string][]byte{"data": big}))
	require.NoError(t, err)
	require.True(t, res.IsBinary)
	assert.True(t, bytes.Equal(big, res.Binary))
	assert.Zero(t, shm.Views())
	res.Release() // not a view: nothing to do

	res, err = app.Execute(t.Context(), "echo_binary", nil, snakepit.WithPool("sm"), snakepit.WithZeroCopy(),
		snakepit.WithBinary(map[string][]byte{"data": big}))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, res.Binary))
	assert.Equal(t, 1, shm.Views())
	res.Binary[0] ^= 0xff // a private mapping: writable
	st, err := app.Stats(t.Context(), "sm")
	require.NoError(t, err)
	assert.Equal(t, 1, st.SharedMemory.Lent, "the view holds its segment")
	res.Release()
	st, err = app.Stats(t.Context(), "sm")
	require.NoError(t, err)
	assert.Zero(t, st.SharedMemory.Lent)
	assert.Positive(t, st.SharedMemory.Idle, "segments are kept for reuse")
	assert.Zero(t, shm.Views())
	assert.Nil(t, res.Binary)

	// What is left are the host's idle segments, kept for reuse; none of
	// the worker's own. Stop removes them with the directory.
	for _, name := range segments(t, dir) {
		assert.True(t, strings.HasPrefix(name, "q."), "%s is the host's", name)
	}
	stopAndCheck(t, app)
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "Stop removes the segment directory: %v", err)
}

func TestACallThatEndsUnansweredNeverLendsItsSegmentsAgain(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("shmcancel"), Pools: []snakepit.PoolConfig{{Name: "sx", Size: 1}}})
	big := randomBytes(t, 2<<20)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// The caller leaves mid-call: the worker may still read the parameter,
	// or write a result (a sync tool runs on), after the host has moved on.
	_, err := app.Execute(ctx, "slow_echo_binary", map[string]any{"ms": 1500}, snakepit.WithPool("sx"),
		snakepit.WithBinary(map[string][]byte{"data": big}))
	require.ErrorIs(t, err, snakepit.ErrDeadlineExceeded)
	st, err := app.Stats(t.Context(), "sx")
	require.NoError(t, err)
	assert.Equal(t, snakepit.SharedMemoryStats{}, st.SharedMemory,
		"the parameter's and the result's segments were removed, not kept for another call")
	// The next call gets fresh segments and its own bytes.
	other := randomBytes(t, 2<<20)
	res, err := app.Execute(t.Context(), "slow_echo_binary", map[string]any{"ms": 1}, snakepit.WithPool("sx"),
		snakepit.WithBinary(map[string][]byte{"data": other}))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(other, res.Binary))
}

func TestAWorkerThatDiesHoldingASegmentLeavesNone(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("shmcrash"), Pools: []snakepit.PoolConfig{{Name: "sc", Size: 1}}})
	dir := app.SharedMemoryDir()
	_, err := app.Execute(t.Context(), "crash_holding_segment", map[string]any{"size": 2 << 20}, snakepit.WithPool("sc"))
	require.Error(t, err)
	assert.ErrorIs(t, err, snakepit.ErrWorkerExit)
	require.Eventually(t, func() bool {
		for _, name := range segments(t, dir) {
			if strings.HasPrefix(name, "r.") {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the dead worker's segment is removed")
	waitStats(t, app, "sc", "the worker replaced", func(s statsView) bool { return s.Ready == 1 })
}

func TestSharedMemoryOffSendsEverythingByGRPC(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("shmoff"),
		Pools: []snakepit.PoolConfig{{Name: "off", Size: 1, SharedMemoryThreshold: -1}}})
	assert.Empty(t, app.SharedMemoryDir())
	res, err := app.Execute(t.Context(), "describe_binary", nil, snakepit.WithPool("off"),
		snakepit.WithBinary(map[string][]byte{"data": randomBytes(t, 2<<20)}))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, res.Decode(&got))
	assert.Equal(t, "bytes", got["type"])
}

func TestAHostSIGKILLedWithSegmentsLeavesNoneAfterTheNextStart(t *testing.T) {
	testutil.Python(t)
	bin := buildCrashHost(t)
	data := t.TempDir()
	tmp, err := os.MkdirTemp("", "sph")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	inst := uniqueInstance("shmhost")
	host := startCrashHost(t, bin, data, inst, 1)
	require.NotEmpty(t, host.ShmDir)
	// A call in flight when the host died left its request segment.
	left := filepath.Join(host.ShmDir, "q."+strings.Repeat("ab", 32))
	require.NoError(t, os.WriteFile(left, randomBytes(t, 1<<20), 0o600))
	require.NoError(t, syscall.Kill(host.cmd.Process.Pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return len(testutil.ProcessesOfRun(host.RunID)) == 0 }, 5*time.Second, 10*time.Millisecond)
	_, err = os.Stat(left)
	require.NoError(t, err, "the dead host's segment is still there")

	startApp(t, snakepit.Config{InstanceName: inst, DataDir: data, Pools: []snakepit.PoolConfig{{Name: "crash", Size: 1}}})
	_, err = os.Stat(host.ShmDir)
	assert.True(t, os.IsNotExist(err), "the next start removed the dead run's shared-memory directory: %v", err)
}
