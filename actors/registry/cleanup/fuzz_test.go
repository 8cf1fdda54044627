package cleanup

import (
	"bytes"
	"slices"
	"testing"

	"github.com/snakepit-go/snakepit/internal/procs"
)

// FuzzDecideRogue: whatever command line a process has, the rogue sweep
// kills it only when it runs an owned script, carries a run marker of
// another run and this instance's token, and is an orphan.
func FuzzDecideRogue(f *testing.F) {
	nul := func(argv ...string) []byte {
		return bytes.Join(func() [][]byte {
			var out [][]byte
			for _, a := range argv {
				out = append(out, []byte(a))
			}
			return out
		}(), []byte{0})
	}
	f.Add(nul("python3", "grpc_server.py", "--snakepit-run-id", "old0001", "--snakepit-instance-token", "tok-a"), int32(1))
	f.Add(nul("python3", "/x/grpc_server.py", "--run-id=old0001", "--snakepit-instance-token=tok-a"), int32(1))
	f.Add(nul("python3", "grpc_server.pyc", "--snakepit-run-id", "old0001", "--snakepit-instance-token", "tok-a"), int32(1))
	f.Add(nul("python3", "-m", "http.server", "--run-id", "old0001", "--snakepit-instance-token", "tok-a"), int32(1))
	f.Add(nul("grpc_server.py", "--snakepit-run-id", "cur0001", "--snakepit-instance-token", "tok-a"), int32(7))
	id := Identity{RunID: "cur0001", InstanceName: "prod", InstanceToken: "tok-a"}
	r := Rules{}.withDefaults()
	f.Fuzz(func(t *testing.T, raw []byte, ppid int32) {
		argv := []string{}
		for _, a := range bytes.Split(raw, []byte{0}) {
			argv = append(argv, string(a))
		}
		p := procs.Proc{PID: 100, PPID: int(ppid), Cmdline: argv}
		table := map[int]procs.Proc{100: p, 7: {PID: 7, PPID: 1}}
		kill, _ := decideRogue(p, table, id, r, map[string]bool{"live0001": true}, 50)
		if !kill {
			return
		}
		run, ok := r.runID(argv)
		switch {
		case !procs.HasScript(argv, r.Scripts):
			t.Fatalf("killed without an owned script: %q", argv)
		case !ok || run == id.RunID || run == "live0001":
			t.Fatalf("killed with run %q (marker %v): %q", run, ok, argv)
		case !slices.ContainsFunc(argv, func(a string) bool { return bytes.Contains([]byte(a), []byte(id.InstanceToken)) }):
			t.Fatalf("killed without this instance's token: %q", argv)
		case ppid == 7:
			t.Fatalf("killed a process whose parent is alive: %q", argv)
		}
	})
}
