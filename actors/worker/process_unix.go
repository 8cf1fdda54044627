//go:build unix

package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/snakepit-go/snakepit/internal/procs"
)

// outputTail is how much of a worker's output is kept for error messages.
const outputTail = 8 << 10

// outputDrain bounds the wait for the rest of the output once the server
// has exited.
const outputDrain = 300 * time.Millisecond

// process is one Python worker server in its own process group, with a pipe
// on its stdin as its lifeline: when the host dies the pipe closes and the
// server exits.
type process struct {
	cmd   *exec.Cmd // nil for a forked worker
	pid   int
	pgid  int
	stdin io.WriteCloser
	out   *tailBuffer
	dir   string // private directory: ready file and unix socket
	ready string // ready file path
	sock  string // unix socket path, "" for TCP

	done chan struct{} // closed once reaped; exit is valid then
	exit ExitInfo

	// groupMu orders signals to the group against the reaping of its
	// leader: once groupGone is set, the group id may belong to someone else
	// and is never signalled again.
	groupMu   sync.Mutex
	groupGone bool
}

// launchArgs is the worker's command line after the interpreter.
func launchArgs(c Config) []string {
	args := []string{"-u", c.script()}
	if c.Adapter != "" {
		args = append(args, "--adapter", c.Adapter)
	}
	args = append(args, c.AdapterArgs...)
	if c.Profile == ProfileThread {
		args = append(args, "--max-workers", strconv.Itoa(c.Capacity()))
	}
	args = append(args, "--port", "0")
	if c.HostAddress != "" {
		args = append(args, "--elixir-address", c.HostAddress)
	}
	args = append(args, "--snakepit-run-id", c.RunID)
	if c.InstanceName != "" {
		args = append(args, "--snakepit-instance-name", c.InstanceName)
	}
	if c.InstanceToken != "" {
		args = append(args, "--snakepit-instance-token", c.InstanceToken)
	}
	// Upstream's flags only: what upstream's server does not know (the
	// worker id, the unix socket, the lifeline) travels in the environment
	// (LaunchEnv), so a script speaking only upstream's contract starts.
	return args
}

// startProcess starts the worker server: forked by the pool's fork server
// when the config names one, spawned otherwise. It does not wait for
// readiness.
func startProcess(c Config, lineLog func(line string, rec *pyRecord)) (*process, error) {
	if c.ForkServer != nil {
		return c.ForkServer.start(c, lineLog)
	}
	return spawnProcess(c, lineLog)
}

// newProcess makes the process's private directory (ready file, unix
// socket) and sets c.listen; the caller starts the process.
func newProcess(c *Config) (*process, error) {
	// A short directory: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp(c.TempDir, "spw-"+c.WorkerID+"-") // Validate keeps the id file-safe
	if err != nil {
		return nil, fmt.Errorf("worker directory: %w", err)
	}
	p := &process{dir: dir, ready: filepath.Join(dir, "ready"), out: newTailBuffer(outputTail), done: make(chan struct{})}
	if c.Transport == TransportUnix {
		p.sock = filepath.Join(dir, "w.sock")
		c.listen = "unix:" + p.sock
	}
	return p, nil
}

// spawnProcess starts the worker server as a child of this process.
func spawnProcess(c Config, lineLog func(line string, rec *pyRecord)) (*process, error) {
	p, err := newProcess(&c)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Python, append(launchArgs(c), c.extras.args...)...)
	cmd.Dir = filepath.Dir(c.script())
	cmd.Env = append(LaunchEnv(c, p.ready), c.extras.env...)
	cmd.ExtraFiles = c.extras.files
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = os.RemoveAll(p.dir)
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(p.dir)
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, outW
	// Own process group, parent-death signal from a thread that outlives
	// the child (procs.Start explains why that matters).
	release, err := procs.Start(cmd, procs.SpawnOptions{ParentDeathSignal: c.ParentDeathSignal})
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		_ = os.RemoveAll(p.dir)
		return nil, fmt.Errorf("start %s: %w", c.Python, err)
	}
	_ = outW.Close() // the child holds its own copy
	p.cmd, p.pid, p.pgid, p.stdin = cmd, cmd.Process.Pid, cmd.Process.Pid, stdin

	copied := p.copyOutput(outR, lineLog)
	go func() {
		// Where the system allows it, wait for the leader's exit without
		// reaping it: while it is a zombie the group id is still ours, so the
		// members that outlive it (a tool's subprocesses) are ended now, and
		// never by a signal sent after the reap.
		kept := procs.CanKeepZombie && procs.WaitExitedKeepZombie(p.pid) == nil
		if kept {
			p.endGroup(true)
		}
		err := cmd.Wait()
		if !kept {
			p.endGroup(false)
		}
		release()
		var ps *os.ProcessState
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ps = ee.ProcessState
		} else {
			ps = cmd.ProcessState
		}
		p.finish(copied, outR, func(output string) ExitInfo { return exitInfoOf(ps, p.pid, output) })
	}()
	return p, nil
}

// copyOutput copies what the process writes on outR to its tail and the
// host's log; the channel is closed when the copy ends.
func (p *process) copyOutput(outR *os.File, lineLog func(line string, rec *pyRecord)) <-chan struct{} {
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer outR.Close()
		// ReadSlice, not a Scanner: a line longer than the buffer is kept in
		// pieces instead of ending the copy (which would break the pipe).
		r := bufio.NewReaderSize(outR, 64<<10)
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 {
				// A log record is kept as plain text in the tail (a crash
				// report shows it) and logged at its own level.
				if rec, ok := parsePyLine(line); ok {
					_, _ = p.out.Write([]byte(rec.text()))
					if lineLog != nil {
						lineLog("", &rec)
					}
				} else {
					_, _ = p.out.Write(line)
					if lineLog != nil {
						lineLog(strings.TrimRight(string(line), "\n"), nil)
					}
				}
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}()
	return copied
}

// finish records the exit of a process that is gone (reaped, or no longer
// ours to wait for) and closes done.
func (p *process) finish(copied <-chan struct{}, outR *os.File, info func(output string) ExitInfo) {
	// The output ends when every writer is gone; a tool's subprocess may
	// hold the pipe open after the server died, so wait only briefly,
	// then close our end: the exit must be reported now.
	select {
	case <-copied:
	case <-time.After(outputDrain):
		_ = outR.Close()
		<-copied
	}
	p.exit = info(p.out.String())
	close(p.done)
}

// exited reports whether the process has been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady waits until the ready file names the server's address, the
// process exits, or ctx ends, and returns the handshake (the gRPC dial
// target and the worker's concurrency). It is woken
// by changes in the worker's private directory (readyWatch); it also looks
// every readyRecheck in case an event was lost, and polls every few ms
// when no watcher could be had.
func (p *process) waitReady(ctx context.Context) (Handshake, error) {
	changed, stop, watched := readyWatcher.watch(p.dir)
	defer stop()
	delay := 2 * time.Millisecond
	if watched {
		delay = readyRecheck
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		if b, err := os.ReadFile(p.ready); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return ParseHandshake(b)
		}
		select {
		case <-ctx.Done():
			return Handshake{}, ctx.Err()
		case <-p.done:
			return Handshake{}, errors.New("python process exited before it was ready")
		case <-changed:
			continue
		case <-timer.C:
		}
		if !watched && delay < 5*time.Millisecond {
			delay *= 2
		}
		timer.Reset(delay)
	}
}

// readyRecheck is how often a watched ready file is read anyway.
const readyRecheck = 100 * time.Millisecond

// signalGroup sends sig to the process group while its leader is unreaped
// (so the group id cannot belong to anyone else).
func (p *process) signalGroup(sig syscall.Signal) {
	p.groupMu.Lock()
	defer p.groupMu.Unlock()
	if p.groupGone {
		return
	}
	_ = syscall.Kill(-p.pgid, sig)
}

// endGroup marks the group as no longer ours to signal, SIGKILLing it
// first when kill is set (its leader is a zombie, so the id is still ours).
func (p *process) endGroup(kill bool) {
	p.groupMu.Lock()
	defer p.groupMu.Unlock()
	if kill && !p.groupGone {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	}
	p.groupGone = true
}

// kill sends SIGKILL to the group at once (used by tests and crash handling).
func (p *process) kill() { p.signalGroup(syscall.SIGKILL) }

// stop ends the process: close the lifeline and SIGTERM the group, wait up
// to grace, then SIGKILL the group; it returns once the leader is reaped
// (bounded) and removes the private directory.
func (p *process) stop(grace time.Duration) ExitInfo {
	_ = p.stdin.Close()
	p.signalGroup(syscall.SIGTERM)
	t := time.NewTimer(grace)
	select {
	case <-p.done:
	case <-t.C:
		p.signalGroup(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(KillWait):
		}
	}
	t.Stop()
	// Members of the group that outlived the leader were SIGKILLed while the
	// leader was a zombie (the reaper goroutine), never after the reap.
	_ = os.RemoveAll(p.dir)
	return p.exitInfo()
}

// waitExit returns the exit status if the process is reaped within d
// (d ≤ 0: only if it already is).
func (p *process) waitExit(d time.Duration) (ExitInfo, bool) {
	if p.exited() {
		return p.exit, true
	}
	if d <= 0 {
		return ExitInfo{}, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exit, true
	case <-t.C:
		return ExitInfo{}, false
	}
}

// exitInfo is the exit status once reaped, or an unknown status.
func (p *process) exitInfo() ExitInfo {
	if p.exited() {
		return p.exit
	}
	return ExitInfo{OSPid: p.pid, ExitCode: -1, Output: p.out.String()}
}
