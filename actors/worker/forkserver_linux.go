//go:build linux

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
)

// ForkServerSupported reports whether this system can run a fork server.
const ForkServerSupported = true

// Fork server restart backoff: the first restart after a crash waits
// forkRestartMin, each quick crash doubles it up to forkRestartMax; a zygote
// that lived forkStableAfter resets it.
const (
	forkRestartMin  = 100 * time.Millisecond
	forkRestartMax  = 5 * time.Second
	forkStableAfter = 10 * time.Second
)

// ForkServer is a pool's fork server (a zygote): one Python process that
// imported grpc, the bridge and the adapter's module once, and forks each
// worker from that state instead of starting a new interpreter. A forked
// worker is a worker like any other: its own process group, its own
// lifeline pipe and output pipe held by this process (passed to the zygote
// over a socketpair, SCM_RIGHTS), the same markers, process registry entry,
// heartbeat, recycling and kill chain. The zygote keeps an ended worker a
// zombie until this side has ended the worker's group (so the group id is
// still ours to signal) and says "reap".
//
// The zygote starts with the first fork, and is restarted (with backoff)
// when it dies; its workers outlive it: each is then watched through a
// pidfd until it ends. See README_PROCESS_MANAGEMENT.md, "Fork server".
type ForkServer struct {
	base Config
	log  *slog.Logger

	mu      sync.Mutex
	cur     *zygote
	closed  bool
	backoff time.Duration
	timer   *time.Timer
	starts  int
	// bridged: a worker was spawned while the current zygote started (one
	// per zygote start, so a pool's first worker is ready after one cold
	// start, not a zygote start plus a fork).
	bridged bool
	// life bounds every wait for a fork; Abort ends it.
	life  context.Context
	abort context.CancelFunc
}

// NewForkServer returns the fork server of a pool whose workers are made
// from base (the pool's worker template). Close it after the pool's
// workers have stopped.
func NewForkServer(base Config) *ForkServer {
	base = base.withDefaults()
	base.ForkServer = nil
	base.WorkerID = base.PoolName + "-forkserver"
	f := &ForkServer{base: base, log: base.Logger.With("worker", base.WorkerID, "pool", base.PoolName),
		backoff: forkRestartMin}
	f.life, f.abort = context.WithCancel(context.Background())
	return f
}

// ForkServerInfo describes a fork server.
type ForkServerInfo struct {
	PID    int  // the running zygote's OS pid, 0 when none runs
	Ready  bool // it answers fork requests
	Starts int  // zygotes started so far (restarts + 1)
}

// Info reports the fork server's zygote.
func (f *ForkServer) Info() ForkServerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	inf := ForkServerInfo{Starts: f.starts}
	if z := f.cur; z != nil && !isClosed(z.gone) && z.proc != nil {
		inf.PID = z.proc.pid
		select {
		case <-z.ready:
			inf.Ready = z.err == nil
		default:
		}
	}
	return inf
}

// Abort refuses further forks and ends the waits of those in progress at
// once (a worker start waiting on a zygote that does not answer, a frozen
// one say, fails now instead of after its ReadyTimeout); the zygote keeps
// running. The App aborts its fork servers when it starts to stop.
func (f *ForkServer) Abort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.abort()
}

// Close ends the zygote, which SIGKILLs any worker it forked that still
// runs (close it after the pool's workers have stopped), and refuses
// further forks.
func (f *ForkServer) Close() {
	f.mu.Lock()
	f.closed = true
	f.abort()
	z := f.cur
	if f.timer != nil {
		f.timer.Stop()
	}
	f.mu.Unlock()
	if z != nil && z.proc != nil && !isClosed(z.gone) {
		_ = z.conn.Close()
		z.proc.stop(f.base.StopGrace)
		<-z.gone
	}
}

// Open lets a closed fork server fork again (its zygote starts with the
// next fork).
func (f *ForkServer) Open() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.life, f.abort = context.WithCancel(context.Background())
	}
	f.closed = false
}

// errForkServerClosed: a fork was asked of a closed fork server.
var errForkServerClosed = errors.New("the fork server is closed")

// get returns a ready zygote, starting one when none runs.
func (f *ForkServer) get(ctx context.Context) (*zygote, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, errForkServerClosed
	}
	z := f.cur
	if z == nil || isClosed(z.gone) {
		z = f.launch()
	}
	f.mu.Unlock()
	select {
	case <-z.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the fork server: %w", ctx.Err())
	}
	if z.err != nil {
		return nil, z.err
	}
	return z, nil
}

// bridge reports whether this worker is to be spawned rather than forked:
// the first one asked for while the zygote is starting (which it then
// starts, if none is). Its start and the zygote's overlap.
func (f *ForkServer) bridge() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	z := f.cur
	if z == nil || isClosed(z.gone) {
		z = f.launch()
	}
	if isClosed(z.ready) || f.bridged {
		return false
	}
	f.bridged = true
	return true
}

// launch spawns a zygote (under f.mu) and makes it current.
func (f *ForkServer) launch() *zygote {
	f.starts++
	f.bridged = false
	z := &zygote{ready: make(chan struct{}), gone: make(chan struct{}), born: time.Now(), log: f.log,
		pending: map[uint64]*pendingFork{}, children: map[int]chan exitReport{}}
	f.cur = z
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		z.setReady(fmt.Errorf("fork server socket: %w", err))
		close(z.gone)
		return z
	}
	hostEnd, childEnd := os.NewFile(uintptr(fds[0]), "forkserver-host"), os.NewFile(uintptr(fds[1]), "forkserver")
	c := f.base
	// SIGTERM, not SIGKILL, when this process dies: the zygote then
	// SIGKILLs the workers it forked (forkserver.py) and exits.
	c.ParentDeathSignal = syscall.SIGTERM
	c.extras = launchExtras{args: []string{"--snakepit-fork-server"},
		env:   []string{"SNAKEPIT_FORK_SERVER_FD=3", "SNAKEPIT_FORK_PRELOAD=" + strings.Join(c.ForkPreload, ",")},
		files: []*os.File{childEnd}}
	rec, gen := c.Processes, generations.Add(1)
	key := procreg.EntryKey(c.RunID, c.WorkerID, gen)
	if rec != nil {
		rec.Reserve(procreg.Entry{Key: key, RunID: c.RunID, WorkerID: c.WorkerID, Pool: c.PoolName,
			Generation: gen, Script: c.script()})
	}
	proc, err := spawnProcess(c, pyLineLogger(f.log))
	_ = childEnd.Close()
	if err != nil {
		_ = hostEnd.Close()
		if rec != nil {
			rec.Remove(key)
		}
		z.setReady(fmt.Errorf("fork server: %w", err))
		close(z.gone)
		return z
	}
	if rec != nil {
		rec.Activate(key, proc.pid, proc.pgid)
	}
	conn, err := net.FileConn(hostEnd)
	_ = hostEnd.Close()
	uc, ok := conn.(*net.UnixConn)
	if err != nil || !ok {
		proc.kill()
		z.setReady(fmt.Errorf("fork server socket: %v", err))
		close(z.gone)
		return z
	}
	z.proc, z.conn = proc, uc
	go func() {
		z.read()
		f.onGone(z)
	}()
	go func() {
		<-proc.done
		_ = uc.Close() // a zygote that died unheard ends the reader too
		if rec != nil {
			rec.Remove(key)
		}
	}()
	return z
}

// onGone restarts a zygote that died while the server was open.
func (f *ForkServer) onGone(z *zygote) {
	inf, _ := z.proc.waitExit(time.Second) // for the log line; not under the lock
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.cur != z || z.err != nil {
		return // a zygote that never became ready is started again by the next fork
	}
	if time.Since(z.born) > forkStableAfter {
		f.backoff = forkRestartMin
	}
	wait := f.backoff
	f.backoff = min(f.backoff*2, forkRestartMax)
	f.log.Warn("the fork server exited; restarting it", "exit", inf.String(), "after", wait)
	f.timer = time.AfterFunc(wait, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.closed && f.cur == z {
			f.launch()
		}
	})
}

// zygote is one fork server process and the socket to it.
type zygote struct {
	proc *process
	conn *net.UnixConn
	born time.Time
	log  *slog.Logger

	ready chan struct{} // closed once it is ready or failed (err)
	err   error
	once  sync.Once
	gone  chan struct{} // closed when the socket has ended

	wmu      sync.Mutex // one packet at a time
	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]*pendingFork
	children map[int]chan exitReport
}

type pendingFork struct {
	reply     chan forkReply
	abandoned bool // the caller left: the child is killed and reaped
}

type forkReply struct {
	pid    int
	exited <-chan exitReport
	err    error
}

// exitReport is how a forked worker ended, as the zygote saw it.
type exitReport struct {
	code, signal int
}

// packet is one message of the fork server protocol (forkserver.py).
type packet struct {
	Op       string            `json:"op"`
	ID       uint64            `json:"id,omitempty"`
	PID      int               `json:"pid,omitempty"`
	Args     []string          `json:"args,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Cwd      string            `json:"cwd,omitempty"`
	Threaded bool              `json:"threaded,omitempty"`
	Error    string            `json:"error,omitempty"`
	Code     int               `json:"code,omitempty"`
	Signal   int               `json:"signal,omitempty"`
}

func (z *zygote) setReady(err error) {
	z.once.Do(func() {
		z.err = err
		close(z.ready)
	})
}

// read serves the zygote's packets until the socket ends.
func (z *zygote) read() {
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := z.conn.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			break
		}
		var m packet
		if json.Unmarshal(buf[:n], &m) != nil {
			continue
		}
		switch m.Op {
		case "ready":
			z.setReady(nil)
			z.log.Info("fork server ready", "os_pid", z.proc.pid, "took", time.Since(z.born))
		case "failed":
			z.setReady(fmt.Errorf("the fork server could not import the adapter: %s", m.Error))
		case "forked":
			z.onForked(m)
		case "exited":
			z.mu.Lock()
			ch := z.children[m.PID]
			delete(z.children, m.PID)
			z.mu.Unlock()
			if ch != nil {
				ch <- exitReport{code: m.Code, signal: m.Signal}
			}
		}
	}
	z.mu.Lock()
	for id, p := range z.pending {
		if !p.abandoned {
			p.reply <- forkReply{err: errors.New("the fork server exited")}
		}
		delete(z.pending, id)
	}
	z.mu.Unlock()
	if !isClosed(z.ready) {
		inf, _ := z.proc.waitExit(time.Second)
		z.setReady(fmt.Errorf("the fork server exited before it was ready (%s): %s", inf, outputTailOf(inf.Output)))
	}
	close(z.gone)
}

// onForked answers a fork request, and registers the child for its exit
// report before the next packet (which may be that report) is read.
func (z *zygote) onForked(m packet) {
	z.mu.Lock()
	p := z.pending[m.ID]
	delete(z.pending, m.ID)
	var ch chan exitReport
	if m.Error == "" && m.PID > 0 {
		ch = make(chan exitReport, 1)
		z.children[m.PID] = ch
		if p != nil && p.abandoned {
			z.discard(m.PID, ch)
			p = nil
		}
	}
	z.mu.Unlock()
	if p == nil {
		return
	}
	if m.Error != "" {
		p.reply <- forkReply{err: errors.New(m.Error)}
		return
	}
	p.reply <- forkReply{pid: m.PID, exited: ch}
}

// fork asks for a worker; the zygote gets the lifeline's read end and the
// output's write end. It returns the child's pid and its exit reports.
func (z *zygote) fork(ctx context.Context, req packet, lifeline, output *os.File) (int, <-chan exitReport, error) {
	z.mu.Lock()
	z.nextID++
	req.Op, req.ID = "fork", z.nextID
	p := &pendingFork{reply: make(chan forkReply, 1)}
	z.pending[req.ID] = p
	z.mu.Unlock()
	b, err := json.Marshal(req)
	if err == nil {
		err = z.send(b, unix.UnixRights(int(lifeline.Fd()), int(output.Fd())))
	}
	if err != nil {
		z.mu.Lock()
		delete(z.pending, req.ID)
		z.mu.Unlock()
		return 0, nil, fmt.Errorf("fork request: %w", err)
	}
	select {
	case r := <-p.reply:
		if r.err != nil {
			return 0, nil, r.err
		}
		return r.pid, r.exited, nil
	case <-ctx.Done():
		z.mu.Lock()
		if _, still := z.pending[req.ID]; still {
			p.abandoned = true
			z.mu.Unlock()
			return 0, nil, fmt.Errorf("waiting for the fork: %w", ctx.Err())
		}
		z.mu.Unlock()
		if r := <-p.reply; r.err == nil { // answered meanwhile
			z.discard(r.pid, r.exited)
		}
		return 0, nil, fmt.Errorf("waiting for the fork: %w", ctx.Err())
	}
}

func (z *zygote) send(b, oob []byte) error {
	z.wmu.Lock()
	defer z.wmu.Unlock()
	_, _, err := z.conn.WriteMsgUnix(b, oob, nil)
	return err
}

// discard ends a forked worker nobody waits for (its fork request was
// abandoned), and has it reaped once the zygote reports its exit. Unreaped,
// its group id is still ours to signal.
func (z *zygote) discard(pid int, exited <-chan exitReport) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	go func() {
		select {
		case <-exited:
			z.reap(pid)
		case <-z.gone:
		}
	}()
}

// reap lets the zygote reap an ended worker whose group has been ended.
func (z *zygote) reap(pid int) {
	b, _ := json.Marshal(packet{Op: "reap", PID: pid})
	_ = z.send(b, nil)
}

// start forks a worker for c (ForkServer set) and returns it like
// spawnProcess does.
func (f *ForkServer) start(c Config, lineLog func(line string, rec *pyRecord)) (*process, error) {
	if f.bridge() {
		return spawnProcess(c, lineLog)
	}
	f.mu.Lock()
	life := f.life
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(life, c.ReadyTimeout)
	defer cancel()
	z, err := f.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("fork server: %w", err)
	}
	p, err := newProcess(&c)
	if err != nil {
		return nil, err
	}
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(p.dir)
		return nil, fmt.Errorf("lifeline pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		_ = lifeR.Close()
		_ = lifeW.Close()
		_ = os.RemoveAll(p.dir)
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	env := map[string]string{}
	for _, kv := range LaunchEnv(c, p.ready) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v // a later value wins, as in exec
	}
	req := packet{Args: launchArgs(c)[2:], Env: env, Cwd: filepath.Dir(c.script()), Threaded: c.Profile == ProfileThread}
	pid, exited, err := z.fork(ctx, req, lifeR, outW)
	_ = lifeR.Close() // the child holds its own copies
	_ = outW.Close()
	if err != nil {
		_ = lifeW.Close()
		_ = outR.Close()
		_ = os.RemoveAll(p.dir)
		return nil, fmt.Errorf("fork server: %w", err)
	}
	p.pid, p.pgid, p.stdin = pid, pid, lifeW
	ended, stopWatch := watchExit(pid)
	copied := p.copyOutput(outR, lineLog)
	go func() {
		defer stopWatch()
		var r exitReport
		kept, lateReap := false, false
		select {
		case r = <-exited:
			kept = true
		case <-ended:
			// It ended; its zygote should say so at once. One that does not
			// (frozen, or busy) has not reaped it either: the group id is
			// still ours, and the zygote is told to reap when it reports.
			select {
			case r = <-exited:
				kept = true
			case <-z.gone:
				r = exitReport{code: -1}
			case <-time.After(exitReportWait):
				r = exitReport{code: -1}
				kept, lateReap = !isClosed(z.gone), true
			}
		case <-z.gone:
			// The zygote died: its workers were handed to init, which
			// reaps them. Watch this one until it ends; its status is
			// not known then.
			r = exitReport{code: -1}
			<-ended
		}
		if kept {
			p.endGroup(true)
			if lateReap {
				go func() {
					select {
					case <-exited:
						z.reap(pid)
					case <-z.gone:
					}
				}()
			} else {
				z.reap(pid)
			}
		} else {
			p.endGroup(false)
		}
		p.finish(copied, outR, func(output string) ExitInfo {
			info := ExitInfo{OSPid: pid, ExitCode: r.code, Output: output}
			if r.signal > 0 {
				info.ExitCode, info.Signal = -1, syscall.Signal(r.signal).String()
			}
			return info
		})
	}()
	return p, nil
}

// exitReportWait bounds the wait for the zygote's report once a forked
// worker's pidfd says it ended.
const exitReportWait = time.Second

// watchExit returns a channel closed when process pid (not our child) has
// ended: its pidfd, waited on by the runtime's poller (no thread is held),
// else polled. stop ends the watch.
func watchExit(pid int) (<-chan struct{}, func()) {
	ended := make(chan struct{})
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == nil {
		f := os.NewFile(uintptr(fd), "pidfd")
		if rc, err := f.SyscallConn(); err == nil {
			go func() {
				first := true
				// Read waits until the pidfd is readable (the process ended)
				// when the function returns false; Close ends the wait too.
				_ = rc.Read(func(uintptr) bool {
					if first {
						first = false
						return false
					}
					return true
				})
				close(ended)
			}()
			return ended, func() { _ = f.Close() }
		}
		_ = f.Close()
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for syscall.Kill(pid, 0) == nil {
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
		close(ended)
	}()
	return ended, func() { close(done) }
}

// outputTailOf is the end of a process's output, for an error message.
func outputTailOf(out string) string {
	const max = 2 << 10
	out = strings.TrimSpace(out)
	if len(out) > max {
		out = "…" + out[len(out)-max:]
	}
	return out
}
