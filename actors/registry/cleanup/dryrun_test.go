package cleanup

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/procs"
)

// liveTable is a process table whose processes go when they are killed:
// a group target ends its whole group.
type liveTable struct {
	mu    sync.Mutex
	procs []procs.Proc
}

func (l *liveTable) Processes(context.Context) ([]procs.Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.procs), nil
}

func (l *liveTable) Process(_ context.Context, pid int) (procs.Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.PID == pid {
			return p, nil
		}
	}
	return procs.Proc{}, procs.ErrNotFound
}

func (*liveTable) Environ(context.Context, int) ([]string, error) { return nil, procs.ErrNotFound }

func (l *liveTable) Terminate(_ context.Context, t procs.Target, _ time.Duration) (procs.Outcome, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = slices.DeleteFunc(l.procs, func(p procs.Proc) bool {
		return p.PID == t.PID || t.PGID != 0 && p.PGID == t.PGID
	})
	return procs.Terminated, nil
}

// A dry run reports what the real run then does: the same processes
// ended, the same entries forgotten and kept (a process the registry pass
// would end is not counted again by the rogue sweep).
func TestDryRunReportsWhatTheRealRunDoes(t *testing.T) {
	const hostStart = int64(1_700_000_000_000)
	table := func() *liveTable {
		return &liveTable{procs: []procs.Proc{
			{PID: 1, Cmdline: []string{"/sbin/init"}},
			{PID: 61, PPID: 1, CreateTime: hostStart + 99_000, Cmdline: []string{"/usr/bin/other"}}, // a dead host's pid, reused
			{PID: 200, PPID: 1, PGID: 200, Cmdline: worker("grpc_server.py", "old0001", "tok-a")},   // registered orphan
			{PID: 205, PPID: 200, PGID: 200, Cmdline: []string{"/bin/sleep", "100"}},                // its child, same group
			{PID: 203, PPID: 1, PGID: 999, Cmdline: worker("grpc_server.py", "old0001", "tok-a")},   // left its group
			{PID: 210, PPID: 1, PGID: 210, Cmdline: worker("grpc_server.py", "old0003", "tok-a")},   // unregistered orphan (rogue)
		}}
	}
	registry := func() *memRegistry {
		entry := func(key string, pid, pgid int) procreg.Entry {
			return procreg.Entry{Key: key, RunID: "old0001", WorkerID: key, Status: procreg.Active, OSPid: pid, PGID: pgid,
				Script: "/opt/app/priv/python/grpc_server.py", HostPID: 61, HostStart: hostStart}
		}
		return &memRegistry{snap: procreg.Snapshot{
			Entries: []procreg.Entry{entry("orphan", 200, 200), entry("left-group", 203, 203), entry("gone", 250, 250)},
			Runs:    []procreg.Run{{RunID: "old0001", HostPID: 61, HostStart: hostStart}},
		}}
	}
	run := func(dry bool) (Report, *liveTable, *memRegistry) {
		tab, reg := table(), registry()
		rep, err := Orphans(context.Background(), Options{Identity: me, Registry: reg, Lister: tab, Killer: tab, Rogue: true, DryRun: dry})
		require.NoError(t, err)
		return rep, tab, reg
	}
	pids := func(r Report) []int {
		var out []int
		for _, k := range r.Killed {
			out = append(out, k.PID)
		}
		slices.Sort(out)
		return out
	}
	dry, dryTable, dryReg := run(true)
	real, _, realReg := run(false)
	assert.Equal(t, []int{200, 203, 210}, pids(real))
	assert.Equal(t, pids(real), pids(dry), "the same processes")
	assert.Equal(t, real.Forgotten, dry.Forgotten, "the same entries forgotten")
	assert.Equal(t, 3, real.Forgotten)
	assert.Equal(t, real.Kept, dry.Kept)
	assert.Len(t, dryTable.procs, 6, "a dry run ends nothing")
	assert.Empty(t, dryReg.forgot, "and forgets nothing")
	assert.Len(t, realReg.forgot, 3)
	assert.True(t, dry.DryRun)
	assert.Contains(t, dry.String(), "3 would be killed, 3 entries would be forgotten")
	assert.Contains(t, real.String(), "3 killed, 0 survivors, 3 entries forgotten")
}
