package shm

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/auth"
)

func TestWrittenSegmentsAreLentAndReused(t *testing.T) {
	d := New(t.TempDir(), 0)
	assert.Equal(t, DefaultThreshold, d.Threshold())
	data := bytes.Repeat([]byte("snakepit"), 1<<16)
	seg, ref, err := d.Write(data)
	require.NoError(t, err)
	assert.Equal(t, Ref(seg.Name, len(data)), ref)
	got, err := os.ReadFile(filepath.Join(d.Path(), seg.Name))
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, Stats{Lent: 1}, d.Stats())
	d.Put(seg)
	assert.Equal(t, Stats{Idle: 1, IdleBytes: len(data)}, d.Stats())

	// The idle segment is lent again (no new file) to a payload that fits.
	seg2, _, err := d.Write(data[:100])
	require.NoError(t, err)
	assert.Equal(t, seg.Name, seg2.Name)
	assert.Zero(t, d.Idle())
	// A bigger one gets a new file.
	seg3, _, err := d.Write(append(data, 'x'))
	require.NoError(t, err)
	assert.NotEqual(t, seg.Name, seg3.Name)
	d.Put(seg2)
	d.Put(seg3)
	assert.Equal(t, 2, segments(d))
	d.Trim()
	assert.Zero(t, segments(d))
}

func TestIdleSegmentsStayUnderTheBound(t *testing.T) {
	d := New(t.TempDir(), 0)
	d.maxFree = 3000
	var segs []Segment
	for range 4 {
		s, err := d.Get(1000)
		require.NoError(t, err)
		segs = append(segs, s)
	}
	for _, s := range segs {
		d.Put(s)
	}
	assert.Equal(t, 3, d.Idle())
	assert.Equal(t, 3, segments(d), "the fourth is removed")
}

func TestTakeReadsTheOfferedSegmentOrAdoptsTheWorkers(t *testing.T) {
	d := New(t.TempDir(), 0)
	data := bytes.Repeat([]byte("x1"), 1<<15)
	for _, view := range []bool{false, true} {
		offered, err := d.Get(len(data))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(d.Path(), offered.Name), data, 0o600))
		b, err := d.Take(Ref(offered.Name, len(data)-2), offered, "pool-w1", view)
		require.NoError(t, err)
		assert.Equal(t, data[:len(data)-2], b)
		if view {
			assert.Equal(t, 1, Views())
			assert.Zero(t, d.Idle(), "a view holds its segment")
			assert.Equal(t, 1, d.Stats().Lent)
			b[0] = 'X' // private: writable, seen by nobody else
			assert.True(t, Release(b))
			assert.False(t, Release(b), "released once")
		} else {
			assert.False(t, Release(b), "a copy is not a view")
		}
		assert.Zero(t, Views())
		assert.Equal(t, 1, d.Idle(), "the segment is idle again")
		d.Trim()
	}

	// A result too big for the offered segment comes in one of the worker's
	// own, which is adopted (renamed to a host name) and kept for reuse.
	offered, err := d.Get(10)
	require.NoError(t, err)
	own := "r.pool-w1." + strconv.Itoa(os.Getpid()) + "." + auth.NewSecret()
	require.NoError(t, os.WriteFile(filepath.Join(d.Path(), own), data, 0o600))
	b, err := d.Take(Ref(own, len(data)), offered, "pool-w1", false)
	require.NoError(t, err)
	assert.Equal(t, data, b)
	_, err = os.Stat(filepath.Join(d.Path(), own))
	assert.True(t, os.IsNotExist(err))
	assert.Equal(t, 2, d.Idle(), "the unused offer and the adopted segment")
	assert.Zero(t, d.Stats().Lent, "nothing is lent once every call gave its segments back")
}

func TestTakeRefusesWhatIsNotItsWorkersSegment(t *testing.T) {
	d := New(t.TempDir(), 0)
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("x"), 0o600))
	hex := auth.NewSecret()
	for _, ref := range []string{
		"../secret:1", outside + ":1", "r.pool-w1.1.." + hex + ":1",
		"q." + hex + ":1",           // a host name that was not offered
		"r.pool-w2.1." + hex + ":1", // another worker's
		"r.pool-w1.1." + hex + "/x:1", "", "r.pool-w1..x:1", "r.pool-w1.1." + hex, "r.pool-w1.1." + hex + ":-1",
	} {
		_, err := d.Take(ref, Segment{}, "pool-w1", false)
		assert.ErrorIs(t, err, ErrName, ref)
	}
}

func TestRemoveWorkerRemovesOnlyThatProcesssSegments(t *testing.T) {
	d := New(t.TempDir(), 0)
	mine := []string{"r.pool-w1.42." + auth.NewSecret(), "r.pool-w1.42." + auth.NewSecret()}
	others := []string{"r.pool-w1.43." + auth.NewSecret(), "r.pool-w10.42." + auth.NewSecret(), "q." + auth.NewSecret()}
	for _, n := range append(append([]string{}, mine...), others...) {
		require.NoError(t, os.WriteFile(filepath.Join(d.Path(), n), []byte("x"), 0o600))
	}
	assert.Equal(t, 2, d.RemoveWorker("pool-w1", 42))
	assert.Equal(t, len(others), segments(d))
}

func TestWriteIntoAMissingDirectoryFails(t *testing.T) {
	d := New(filepath.Join(t.TempDir(), "gone"), 0)
	_, _, err := d.Write([]byte("x"))
	assert.Error(t, err)
}

func TestAFullFileSystemSendsPayloadsInlineForAWhile(t *testing.T) {
	d := New(t.TempDir(), 0)
	d.fullUntil = time.Now().Add(time.Hour) // as after an ENOSPC
	_, _, err := d.Write([]byte("x"))
	assert.ErrorIs(t, err, ErrFull)
	assert.Zero(t, segments(d), "nothing was written")
	d.fullUntil = time.Time{}
	_, _, err = d.Write([]byte("x"))
	assert.NoError(t, err)
}

func TestIdleSegmentsAreBoundedByTheFileSystemsSize(t *testing.T) {
	d := New(t.TempDir(), 0)
	assert.LessOrEqual(t, d.maxFree, DefaultMaxFree)
	assert.Positive(t, d.maxFree)
}

func TestADroppedSegmentIsNeverLentAgain(t *testing.T) {
	d := New(t.TempDir(), 0)
	s, _, err := d.Write([]byte("payload"))
	require.NoError(t, err)
	d.Drop(s)
	assert.Equal(t, Stats{}, d.Stats())
	assert.Zero(t, segments(d))
	s2, err := d.Get(3)
	require.NoError(t, err)
	assert.NotEqual(t, s.Name, s2.Name)
	d.Drop(Segment{}) // nothing lent: nothing to do
	assert.Equal(t, 1, d.Stats().Lent)
}

// segments counts the segment files in d's directory (lent, idle and a
// worker's).
func segments(d *Dir) int {
	es, _ := os.ReadDir(d.Path())
	n := 0
	for _, e := range es {
		if validName.MatchString(e.Name()) {
			n++
		}
	}
	return n
}
