package cleanup

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/procs"
)

// stubLister is a fixed process table.
type stubLister []procs.Proc

func (s stubLister) Processes(context.Context) ([]procs.Proc, error) { return s, nil }
func (s stubLister) Process(_ context.Context, pid int) (procs.Proc, error) {
	for _, p := range s {
		if p.PID == pid {
			return p, nil
		}
	}
	return procs.Proc{}, procs.ErrNotFound
}

func (stubLister) Environ(context.Context, int) ([]string, error) {
	return nil, errors.New("stub: no environment")
}

// envLister is a stubLister with environments.
type envLister struct {
	stubLister
	env map[int][]string
}

func (l envLister) Environ(_ context.Context, pid int) ([]string, error) {
	if e, ok := l.env[pid]; ok {
		return e, nil
	}
	return nil, errors.New("stub: no environment")
}

// stubKiller records what it was asked to end.
type stubKiller struct {
	mu      sync.Mutex
	targets []procs.Target
}

func (k *stubKiller) Terminate(_ context.Context, t procs.Target, _ time.Duration) (procs.Outcome, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.targets = append(k.targets, t)
	return procs.Terminated, nil
}

func (k *stubKiller) pids() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []int
	for _, t := range k.targets {
		out = append(out, t.PID)
	}
	return out
}

var me = Identity{RunID: "cur0001", InstanceName: "prod", InstanceToken: "tok-a"}

// worker is the command line of a worker of run with token.
func worker(script, run, token string) []string {
	argv := []string{"/usr/bin/python3", "-u", "/opt/app/priv/python/" + script, "--adapter", "x.Y", "--port", "0"}
	if run != "" {
		argv = append(argv, "--snakepit-run-id", run)
	}
	argv = append(argv, "--snakepit-instance-name", "prod")
	if token != "" {
		argv = append(argv, "--snakepit-instance-token", token)
	}
	return append(argv, "--snakepit-worker-id", "w1")
}

func TestRogueSweep(t *testing.T) {
	const init = 1
	base := []procs.Proc{
		{PID: init, PPID: 0, Cmdline: []string{"/sbin/init"}},
		{PID: 50, PPID: init, Cmdline: []string{"/usr/bin/livehost"}},
	}
	cases := []struct {
		name     string
		proc     procs.Proc
		disabled bool
		liveRun  string
		killed   bool
	}{
		{name: "ours from an old run is killed", proc: procs.Proc{PID: 100, PPID: init, PGID: 100, Cmdline: worker("grpc_server.py", "old0001", "tok-a")}, killed: true},
		{name: "threaded server of an old run is killed", proc: procs.Proc{PID: 100, PPID: init, PGID: 100, Cmdline: worker("grpc_server_threaded.py", "old0001", "tok-a")}, killed: true},
		{name: "run marker in = form is read", proc: procs.Proc{PID: 100, PPID: init, Cmdline: []string{"python3", "grpc_server.py", "--run-id=old0001", "--snakepit-instance-token=tok-a"}}, killed: true},
		{name: "owned script without any run id is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: worker("grpc_server.py", "", "tok-a")}},
		{name: "owned script with another instance's token is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: worker("grpc_server.py", "old0001", "tok-b")}},
		{name: "owned script with no token is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: worker("grpc_server.py", "old0001", "")}},
		{name: "another instance name with our token is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: []string{"python3", "grpc_server.py", "--snakepit-run-id", "old0001", "--snakepit-instance-name", "dev", "--snakepit-instance-token", "tok-a"}}},
		{name: "unrelated python process is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: []string{"python3", "-m", "http.server", "--run-id", "old0001", "--snakepit-instance-token", "tok-a"}}},
		{name: "a file merely named like the script is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: []string{"python3", "grpc_server.pyc", "--snakepit-run-id", "old0001", "--snakepit-instance-token", "tok-a"}}},
		{name: "current run is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: worker("grpc_server.py", "cur0001", "tok-a")}},
		{name: "old run whose parent is alive is untouched", proc: procs.Proc{PID: 100, PPID: 50, Cmdline: worker("grpc_server.py", "old0001", "tok-a")}},
		{name: "old run whose host is recorded alive is untouched", proc: procs.Proc{PID: 100, PPID: init, Cmdline: worker("grpc_server.py", "old0001", "tok-a")}, liveRun: "old0001"},
		{name: "zombie is untouched", proc: procs.Proc{PID: 100, PPID: init, Zombie: true, Cmdline: worker("grpc_server.py", "old0001", "tok-a")}},
		{name: "disabled: nothing killed", proc: procs.Proc{PID: 100, PPID: init, Cmdline: worker("grpc_server.py", "old0001", "tok-a")}, disabled: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := &stubKiller{}
			var reg Registry
			if tc.liveRun != "" {
				reg = &memRegistry{snap: procreg.Snapshot{Runs: []procreg.Run{{RunID: tc.liveRun, HostPID: 50}}}}
			}
			rep, err := Orphans(context.Background(), Options{
				Identity: me, Rogue: !tc.disabled, Registry: reg,
				Lister: stubLister(append(append([]procs.Proc{}, base...), tc.proc)), Killer: k,
			})
			require.NoError(t, err)
			if tc.killed {
				require.Equal(t, []int{100}, k.pids())
				require.Len(t, rep.Killed, 1)
				require.Equal(t, "old0001", rep.Killed[0].RunID)
			} else {
				require.Empty(t, k.pids())
				require.Empty(t, rep.Killed)
			}
		})
	}
}

// memRegistry is an in-memory Registry.
type memRegistry struct {
	mu     sync.Mutex
	snap   procreg.Snapshot
	forgot []string
	runs   []string
}

func (m *memRegistry) Read(context.Context) (procreg.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap, nil
}

func (m *memRegistry) Forget(_ context.Context, keys, runs []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgot = append(m.forgot, keys...)
	m.runs = append(m.runs, runs...)
	return nil
}

func TestRegistryEntries(t *testing.T) {
	const hostStart = int64(1_700_000_000_000)
	table := []procs.Proc{
		{PID: 1, Cmdline: []string{"/sbin/init"}},
		{PID: 60, PPID: 1, CreateTime: hostStart, Cmdline: []string{"/usr/bin/livehost"}},       // a live host of old0002
		{PID: 61, PPID: 1, CreateTime: hostStart + 99_000, Cmdline: []string{"/usr/bin/other"}}, // pid of a dead host, reused
		{PID: 200, PPID: 1, PGID: 200, Cmdline: worker("grpc_server.py", "old0001", "tok-a")},
		{PID: 201, PPID: 1, PGID: 201, Cmdline: []string{"/usr/bin/vim", "notes.txt"}},
		{PID: 202, PPID: 60, PGID: 202, Cmdline: worker("grpc_server.py", "old0002", "tok-a")},
		{PID: 203, PPID: 1, PGID: 999, Cmdline: worker("grpc_server.py", "old0001", "tok-a")},
		{PID: 204, PPID: 1, PGID: 204, Cmdline: worker("grpc_server.py", "old0009", "tok-a")},
	}
	entry := func(key, run string, pid, pgid, host int, start int64) procreg.Entry {
		return procreg.Entry{Key: key, RunID: run, WorkerID: key, Status: procreg.Active, OSPid: pid, PGID: pgid,
			Script: "/opt/app/priv/python/grpc_server.py", HostPID: host, HostStart: start}
	}
	reg := &memRegistry{snap: procreg.Snapshot{
		Entries: []procreg.Entry{
			entry("orphan", "old0001", 200, 200, 61, hostStart),     // host pid reused → dead; verified → kill group
			entry("reused", "old0001", 201, 201, 61, hostStart),     // pid now runs vim → forget only
			entry("gone", "old0001", 250, 250, 61, hostStart),       // no such process → forget
			entry("livehost", "old0002", 202, 202, 60, hostStart),   // host alive → keep
			entry("left-group", "old0001", 203, 203, 61, hostStart), // left its group → kill the pid only
			entry("otherrun", "old0001", 204, 204, 61, hostStart),   // pid runs another run's worker → forget
			{Key: "reserved", RunID: "old0001", Status: procreg.Reserved, HostPID: 61, HostStart: hostStart},
			entry("mine", "cur0001", 300, 300, 61, hostStart), // current run → keep
		},
		Runs: []procreg.Run{
			{RunID: "old0001", HostPID: 61, HostStart: hostStart},
			{RunID: "old0002", HostPID: 60, HostStart: hostStart},
			{RunID: "cur0001", HostPID: 61, HostStart: hostStart},
		},
	}}
	k := &stubKiller{}
	rep, err := Orphans(context.Background(), Options{Identity: me, Registry: reg, Lister: stubLister(table), Killer: k})
	require.NoError(t, err)
	require.ElementsMatch(t, []procs.Target{{PID: 200, PGID: 200}, {PID: 203}}, k.targets)
	require.ElementsMatch(t, []string{"orphan", "reused", "gone", "left-group", "otherrun", "reserved"}, reg.forgot)
	require.Equal(t, []string{"old0001"}, reg.runs, "a dead run is forgotten; a live host's run and the current run stay")
	require.Equal(t, 2, rep.Kept)
	require.Equal(t, 6, rep.Forgotten)
	require.Len(t, rep.Killed, 2)
}

func TestCurrentRunEndsRegisteredAndUnregisteredProcesses(t *testing.T) {
	self := procs.Proc{PID: 10, PPID: 1, Cmdline: []string{"/usr/bin/host"}}
	table := stubLister{
		self,
		{PID: 300, PPID: 10, PGID: 300, Cmdline: worker("grpc_server.py", "cur0001", "tok-a")},
		{PID: 301, PPID: 10, PGID: 301, Cmdline: worker("grpc_server_threaded.py", "cur0001", "tok-a")}, // not in the registry
		{PID: 302, PPID: 10, PGID: 302, Cmdline: worker("grpc_server.py", "cur0001", "tok-b")},          // another instance
		{PID: 303, PPID: 1, PGID: 303, Cmdline: worker("grpc_server.py", "old0001", "tok-a")},           // another run: not this pass
	}
	reg := &memRegistry{snap: procreg.Snapshot{Entries: []procreg.Entry{
		{Key: "a", RunID: "cur0001", WorkerID: "w1", OSPid: 300, PGID: 300, Script: "grpc_server.py"},
		{Key: "b", RunID: "cur0001", WorkerID: "w2", OSPid: 399, PGID: 399, Script: "grpc_server.py"}, // gone
	}}}
	k := &stubKiller{}
	rep, err := CurrentRun(context.Background(), Options{Identity: me, Registry: reg, Lister: table, Killer: k})
	require.NoError(t, err)
	require.ElementsMatch(t, []procs.Target{{PID: 300, PGID: 300}, {PID: 301, PGID: 301}}, k.targets)
	require.Equal(t, []string{"cur0001"}, reg.runs)
	require.Len(t, rep.Killed, 2)
	require.Equal(t, "w1", rep.Killed[0].WorkerID)
}

func TestDescendantsAreFoundByTheirEnvironment(t *testing.T) {
	marks := func(run, token string) []string {
		return []string{"PATH=/bin", "SNAKEPIT_RUN_ID=" + run, "SNAKEPIT_INSTANCE_NAME=prod", "SNAKEPIT_INSTANCE_TOKEN=" + token}
	}
	table := []procs.Proc{
		{PID: 1, Cmdline: []string{"/sbin/init"}},
		{PID: 50, PPID: 1, Cmdline: []string{"/usr/bin/livehost"}},
		{PID: 400, PPID: 1, Cmdline: []string{"sleep", "60"}},          // left by a dead run: killed
		{PID: 401, PPID: 1, Cmdline: []string{"sleep", "60"}},          // another instance's token
		{PID: 402, PPID: 1, Cmdline: []string{"sleep", "60"}},          // no markers at all
		{PID: 403, PPID: 50, Cmdline: []string{"sleep", "60"}},         // parent alive
		{PID: 404, PPID: 1, Cmdline: []string{"sleep", "60"}},          // the current run
		{PID: 405, PPID: 1, Cmdline: []string{"sleep", "60"}},          // a run whose host is alive
		{PID: 406, PPID: 1, Cmdline: []string{"sleep", "60"}},          // unreadable environment
		{PID: 407, PPID: 1, Cmdline: []string{"ffmpeg"}, Zombie: true}, // already dead
		{PID: 408, PPID: 1, Cmdline: []string{"python3", "-c", "x"}},   // dead run, another instance name
	}
	env := map[int][]string{
		400: marks("old0001", "tok-a"), 401: marks("old0001", "tok-b"), 402: {"PATH=/bin"},
		403: marks("old0001", "tok-a"), 404: marks("cur0001", "tok-a"), 405: marks("live001", "tok-a"),
		407: marks("old0001", "tok-a"),
		408: {"SNAKEPIT_RUN_ID=old0001", "SNAKEPIT_INSTANCE_NAME=dev", "SNAKEPIT_INSTANCE_TOKEN=tok-a"},
	}
	reg := &memRegistry{snap: procreg.Snapshot{Runs: []procreg.Run{{RunID: "live001", HostPID: 50}}}}
	k := &stubKiller{}
	rep, err := Orphans(context.Background(), Options{Identity: me, Rogue: true, Registry: reg,
		Lister: envLister{stubLister(table), env}, Killer: k})
	require.NoError(t, err)
	require.Equal(t, []int{400}, k.pids())
	require.Contains(t, rep.Killed[0].Reason, "left behind by run old0001")

	// Off with the sweep.
	k = &stubKiller{}
	_, err = Orphans(context.Background(), Options{Identity: me, Registry: reg, Lister: envLister{stubLister(table), env}, Killer: k})
	require.NoError(t, err)
	require.Empty(t, k.pids())

	// At stop, the current run's leftovers go.
	k = &stubKiller{}
	_, err = CurrentRun(context.Background(), Options{Identity: me, Lister: envLister{stubLister(table), env}, Killer: k})
	require.NoError(t, err)
	require.Equal(t, []int{404}, k.pids())
}
