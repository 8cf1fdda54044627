package procs

import (
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Linux delivers the parent-death signal (PR_SET_PDEATHSIG) when the OS
// thread that forked the child exits, not when the process does
// (golang/go#27505). The Go runtime ends a thread when a goroutine that
// called runtime.LockOSThread exits without unlocking, and it may otherwise
// move goroutines between threads at will. So every child with a death
// signal is forked by one spawner goroutine locked to its thread, and that
// goroutine lives as long as any child it forked is unreaped.
//
// spawner.live counts children not yet released plus spawns in flight.
// Start raises it (under mu) before it sends its request, and starts the
// spawner if none runs. release, or a failed cmd.Start, lowers it; at zero it
// pokes the spawner via spawnIdle. The spawner only exits after it saw
// live == 0 under mu, and clears running in the same critical section. So a
// Start that raised live first keeps the spawner alive until it has served
// it, and a Start that comes after finds running false and starts a fresh
// spawner. The exiting goroutine is still locked, so its thread exits too:
// harmless then, because every child it forked has been reaped. (Had the
// spawner run on the main thread, the runtime parks that thread for good
// instead of ending it; no signal fires either way.) Stale pokes are
// harmless: the spawner re-checks live under mu.
//
// A child without a death signal is started on the caller's goroutine: no
// thread's exit can hurt it.
var spawner struct {
	mu      sync.Mutex
	running bool
	live    int
}

// spawnRequest asks the spawner to run cmd.Start and send its result.
type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

var (
	spawnRequests = make(chan spawnRequest)
	spawnIdle     = make(chan struct{}, 1)
)

// Start starts cmd in a new process group (Setpgid, with Pgid reset to 0;
// a caller's Setsid, which makes a new group anyway, is kept instead) with
// the parent-death signal opts.ParentDeathSignal (when 0, a Pdeathsig the
// caller set is kept), keeping every other SysProcAttr field the caller set.
// cmd.SysProcAttr is created or updated in place. A child with a parent-death signal is forked by a dedicated
// spawner goroutine locked to its OS thread, so the signal fires when this
// process dies, not when some thread exits.
//
// The caller must call release exactly once after cmd.Wait has returned
// (the child is reaped); further calls are no-ops.
func Start(cmd *exec.Cmd, opts SpawnOptions) (release func(), err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	attr := cmd.SysProcAttr
	if !attr.Setsid {
		attr.Setpgid = true
		attr.Pgid = 0
	}
	if opts.ParentDeathSignal != 0 {
		attr.Pdeathsig = opts.ParentDeathSignal
	}
	if attr.Pdeathsig == 0 {
		// No death signal: the forking thread does not matter.
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("procs: start: %w", err)
		}
		return func() {}, nil
	}
	spawner.mu.Lock()
	spawner.live++
	if !spawner.running {
		spawner.running = true
		go spawnLoop()
	}
	spawner.mu.Unlock()

	reply := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		releaseChild()
		return nil, fmt.Errorf("procs: start: %w", err)
	}
	var once sync.Once
	return func() { once.Do(releaseChild) }, nil
}

// releaseChild lowers the live count and pokes the spawner at zero.
func releaseChild() {
	spawner.mu.Lock()
	spawner.live--
	idle := spawner.live == 0
	spawner.mu.Unlock()
	if idle {
		select {
		case spawnIdle <- struct{}{}:
		default: // a poke is already pending
		}
	}
}

// spawnLoop is the spawner goroutine. It never unlocks its thread: when it
// returns, the runtime ends the thread.
func spawnLoop() {
	runtime.LockOSThread()
	for {
		select {
		case req := <-spawnRequests:
			req.reply <- req.cmd.Start()
		case <-spawnIdle:
			spawner.mu.Lock()
			if spawner.live == 0 {
				spawner.running = false
				spawner.mu.Unlock()
				return
			}
			spawner.mu.Unlock()
		}
	}
}

// spawnerRunning reports whether a spawner goroutine is running (tests).
func spawnerRunning() bool {
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	return spawner.running
}
