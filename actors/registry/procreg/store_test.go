package procreg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, moved, err := OpenStore(filepath.Join(t.TempDir(), "inst", "processes.db"), nil)
	require.NoError(t, err)
	require.Empty(t, moved)
	return s
}

func TestStoreLifecycleOfAnEntry(t *testing.T) {
	s := newStore(t)
	key := EntryKey("run1", "w-1", 3)
	require.Equal(t, "run1/w-1/3", key)
	require.NoError(t, s.Apply([]Op{
		{PutRun: &Run{RunID: "run1", HostPID: 10, HostStart: 99}},
		{Put: &Entry{Key: key, RunID: "run1", WorkerID: "w-1", Generation: 3, Status: Reserved, Script: "/x/grpc_server.py"}},
	}))
	require.NoError(t, s.Apply([]Op{{Activate: &Entry{Key: key, OSPid: 1234, PGID: 1234, ActiveAt: time.Unix(5, 0)}}}))
	snap, err := s.Read()
	require.NoError(t, err)
	require.Len(t, snap.Entries, 1)
	e := snap.Entries[0]
	require.Equal(t, Active, e.Status)
	require.Equal(t, 1234, e.OSPid)
	require.Equal(t, "w-1", e.WorkerID, "activate keeps what reserve wrote")
	require.Equal(t, "/x/grpc_server.py", e.Script)
	require.Equal(t, []Run{{RunID: "run1", HostPID: 10, HostStart: 99}}, snap.Runs)

	require.NoError(t, s.Apply([]Op{{Delete: key}}))
	snap, err = s.Read()
	require.NoError(t, err)
	require.Empty(t, snap.Entries)
}

func TestDeleteRunRemovesOnlyThatRun(t *testing.T) {
	s := newStore(t)
	var ops []Op
	for _, run := range []string{"aaa", "aaab", "bbb"} {
		ops = append(ops, Op{PutRun: &Run{RunID: run}})
		for _, w := range []string{"w1", "w2"} {
			ops = append(ops, Op{Put: &Entry{Key: EntryKey(run, w, 1), RunID: run}})
		}
	}
	require.NoError(t, s.Apply(ops))
	require.NoError(t, s.Apply([]Op{{DeleteRun: "aaa"}}))
	snap, err := s.Read()
	require.NoError(t, err)
	var keys []string
	for _, e := range snap.Entries {
		keys = append(keys, e.Key)
	}
	require.ElementsMatch(t, []string{"aaab/w1/1", "aaab/w2/1", "bbb/w1/1", "bbb/w2/1"}, keys, "a run id that extends another is kept")
	require.Len(t, snap.Runs, 2)
}

func TestCorruptFileIsMovedAsideAndRebuilt(t *testing.T) {
	for name, content := range map[string][]byte{
		"garbage":   []byte(strings.Repeat("not a bbolt file ", 1000)),
		"truncated": nil, // replaced below by half of a real file
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "processes.db")
			if content == nil {
				s, _, err := OpenStore(path, nil)
				require.NoError(t, err)
				require.NoError(t, s.Apply([]Op{{PutRun: &Run{RunID: "r"}}}))
				raw, err := os.ReadFile(path)
				require.NoError(t, err)
				// Keep the first page, scribble over the meta pages' checksums.
				for i := 16; i < len(raw) && i < 8192; i += 7 {
					raw[i] ^= 0xff
				}
				content = raw
			}
			require.NoError(t, os.WriteFile(path, content, 0o600))

			s, moved, err := OpenStore(path, nil)
			require.NoError(t, err, "a corrupt file is never fatal")
			require.NotEmpty(t, moved)
			old, err := os.ReadFile(moved)
			require.NoError(t, err)
			require.Equal(t, content, old, "the old file is kept for inspection")
			require.NoError(t, s.Apply([]Op{{PutRun: &Run{RunID: "new"}}}))
			snap, err := s.Read()
			require.NoError(t, err)
			require.Equal(t, []Run{{RunID: "new"}}, snap.Runs)
		})
	}
}

func TestUndecodableRecordIsSkipped(t *testing.T) {
	s := newStore(t)
	require.NoError(t, s.Apply([]Op{{Put: &Entry{Key: "r/w/1", RunID: "r"}}}))
	// Write a record bypassing JSON via a run op with an odd key, then a raw bad value.
	require.NoError(t, s.with(func(db *boltDB) error {
		return db.Update(func(tx *boltTx) error { return tx.Bucket(bucketProcs).Put([]byte("r/w/2"), []byte("{bad")) })
	}))
	snap, err := s.Read()
	require.NoError(t, err)
	require.Len(t, snap.Entries, 1)
	require.Equal(t, "r/w/1", snap.Entries[0].Key)
}
