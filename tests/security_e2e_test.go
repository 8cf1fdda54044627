//go:build linux

package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// edgePool is a pool of the Python tests' EdgeAdapter (a tool per edge case).
func edgePool(t *testing.T, p snakepit.PoolConfig) snakepit.PoolConfig {
	t.Helper()
	p.Adapter = "bridge_test_adapters.EdgeAdapter"
	if p.Size == 0 {
		p.Size = 1
	}
	return p
}

// edgeConfig is a Config whose workers can import the Python tests' adapters.
func edgeConfig(t *testing.T, instance string, pools ...snakepit.PoolConfig) snakepit.Config {
	return snakepit.Config{Pools: pools, DataDir: t.TempDir(), InstanceName: instance,
		PythonPath: []string{filepath.Join(repoPriv(t), "tests")}}
}

// workerProc is what /proc shows of one worker process.
type workerProc struct {
	pid     int
	cmdline []string
	env     map[string]string
}

// workersOf reads the command lines and environments of app's workers.
func workersOf(t *testing.T, app *snakepit.App) []workerProc {
	t.Helper()
	var out []workerProc
	for _, pid := range testutil.ProcessesOfRun(app.RunID()) {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		require.NoError(t, err)
		env := map[string]string{}
		envList, err := procs.System.Environ(t.Context(), pid)
		require.NoError(t, err)
		for _, kv := range envList {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		out = append(out, workerProc{pid: pid, cmdline: strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00"), env: env})
	}
	require.NotEmpty(t, out, "no worker processes of run %s", app.RunID())
	return out
}

func flagOf(argv []string, name string) string {
	v, _ := procs.FlagValue(argv, name)
	return v
}

// evilPickle is a pickle that, when loaded, creates path (built by Python's
// own pickle module, protocol 2).
func evilPickle(t *testing.T, path string) []byte {
	t.Helper()
	py := testutil.Python(t).Path
	out, err := exec.Command(py, "-c", `import pickle, sys, pathlib
class T:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(sys.argv[1]),))
sys.stdout.buffer.write(pickle.dumps(T(), protocol=2))`, path).Output()
	require.NoError(t, err)
	return out
}

func dialBridge(t *testing.T, addr string) bridgepb.BridgeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return bridgepb.NewBridgeServiceClient(conn)
}

func jsonArg(t *testing.T, v string) *anypb.Any {
	t.Helper()
	a, err := jsonany.Pack([]byte(v))
	require.NoError(t, err)
	return a
}

// TestWhatPsShowsDoesNotAuthenticate: everything a worker's command line
// shows (run id, instance name and token, worker id, the bridge address)
// gets a caller nowhere on the bridge; the secret is only in the worker's
// environment, which only its user can read.
func TestWhatPsShowsDoesNotAuthenticate(t *testing.T) {
	app := startApp(t, edgeConfig(t, "sec-ps-"+strconv.Itoa(os.Getpid()), edgePool(t, snakepit.PoolConfig{Name: "ps"})))
	w := workersOf(t, app)[0]
	addr := flagOf(w.cmdline, "--elixir-address")
	require.Equal(t, app.BridgeAddress(), addr)
	token, runID := flagOf(w.cmdline, "--snakepit-instance-token"), flagOf(w.cmdline, "--snakepit-run-id")
	workerID := w.env["SNAKEPIT_WORKER_ID"]
	require.NotEmpty(t, token)
	secret := w.env["SNAKEPIT_WORKER_SECRET"]
	require.Len(t, secret, 64, "the worker's secret is in its environment")
	require.NotContains(t, strings.Join(w.cmdline, " "), secret, "and never on its command line")
	require.NotContains(t, strings.Join(w.cmdline, " "), w.env["SNAKEPIT_SERVER_SECRET"])
	st, err := os.Stat("/proc/" + strconv.Itoa(w.pid) + "/environ")
	require.NoError(t, err)
	require.Zero(t, st.Mode().Perm()&0o077, "/proc/PID/environ is readable by its user only")

	c := dialBridge(t, addr)
	ctx := t.Context()
	call := func(ctx context.Context) error {
		_, err := c.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "add",
			Parameters: map[string]*anypb.Any{"a": jsonArg(t, "2"), "b": jsonArg(t, "3")}})
		return err
	}
	for _, v := range []string{token, runID, workerID, ""} {
		for _, md := range [][]string{
			{"x-snakepit-instance-token", token, "x-snakepit-worker-id", workerID},
			{"x-snakepit-worker-id", workerID, "x-snakepit-auth", v},
			{"x-snakepit-instance-token", token, "x-snakepit-worker-id", workerID, "x-snakepit-auth", v},
		} {
			require.Equal(t, codes.Unauthenticated, status.Code(call(metadata.AppendToOutgoingContext(ctx, md...))), "%v", md)
			_, err := c.Ping(metadata.AppendToOutgoingContext(ctx, md...), &bridgepb.PingRequest{})
			require.Equal(t, codes.Unauthenticated, status.Code(err), "ping %v", md)
		}
	}
	// With the secret from the environment the same call works: the host
	// forwards it to the worker that registered "add".
	authed := metadata.AppendToOutgoingContext(ctx, "x-snakepit-worker-id", workerID, "x-snakepit-auth", secret)
	var resp *bridgepb.ExecuteToolResponse
	require.Eventually(t, func() bool {
		resp, err = c.ExecuteTool(authed, &bridgepb.ExecuteToolRequest{ToolName: "add",
			Parameters: map[string]*anypb.Any{"a": jsonArg(t, "2"), "b": jsonArg(t, "3")}})
		return status.Code(err) != codes.NotFound
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, err)
	require.True(t, resp.GetSuccess(), resp.GetErrorMessage())
	raw, err := jsonany.Unpack(resp.GetResult())
	require.NoError(t, err)
	require.JSONEq(t, "5", string(raw))
	// ...as that worker only: it cannot register tools for another.
	_, err = c.RegisterTools(authed, &bridgepb.RegisterToolsRequest{WorkerId: "ps-w9", Tools: []*bridgepb.ToolRegistration{{Name: "evil"}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
}

// TestAPickleThatRunsCodeNeverRuns sends a pickle that would create a file
// through every path: App.Execute on a pool that does not allow pickle,
// the bridge with a worker's right credentials (even to a pool that
// allows it), and a TCP worker directly. The file never appears and each
// caller gets a structured error.
func TestAPickleThatRunsCodeNeverRuns(t *testing.T) {
	target := filepath.Join(t.TempDir(), "pwned")
	evil := evilPickle(t, target)
	app := startApp(t, edgeConfig(t, "sec-pickle-"+strconv.Itoa(os.Getpid()),
		edgePool(t, snakepit.PoolConfig{Name: "plain", Transport: snakepit.TransportTCP}),
		edgePool(t, snakepit.PoolConfig{Name: "trusted", AllowPickle: true})))
	ctx := t.Context()
	md := snakepit.WithMetadata(map[string]string{"binary_format:value": "pickle"})

	// 1. App.Execute, pool without AllowPickle.
	_, err := app.Execute(ctx, "describe", nil, snakepit.WithPool("plain"), snakepit.WithBinary(map[string][]byte{"value": evil}), md)
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	require.Equal(t, snakepit.CodeInvalidArgument, serr.Code, "%v", err)
	require.Contains(t, serr.Message, "does not allow")
	// An unknown tool is refused before anything is decoded, even where pickle is allowed.
	_, err = app.Execute(ctx, "no_such_tool", nil, snakepit.WithPool("trusted"), snakepit.WithBinary(map[string][]byte{"value": evil}), md)
	require.ErrorAs(t, err, &serr)
	require.Equal(t, snakepit.CodeToolNotFound, serr.Code, "%v", err)
	// The positive control: where the host allows it, a harmless pickle is decoded.
	res, err := app.Execute(ctx, "describe", nil, snakepit.WithPool("trusted"),
		snakepit.WithBinary(map[string][]byte{"value": harmlessPickle(t)}), md)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, res.Decode(&got))
	require.Equal(t, "dict", got["value_type"])

	// 2. The bridge, with a worker's own credentials, to the tool the
	// trusted pool's worker registered: forwarded calls never unpickle.
	var trusted workerProc
	for _, w := range workersOf(t, app) {
		if strings.HasPrefix(w.env["SNAKEPIT_WORKER_ID"], "trusted-") {
			trusted = w
		}
	}
	require.NotZero(t, trusted.pid)
	c := dialBridge(t, app.BridgeAddress())
	authed := metadata.AppendToOutgoingContext(ctx, "x-snakepit-worker-id", trusted.env["SNAKEPIT_WORKER_ID"],
		"x-snakepit-auth", trusted.env["SNAKEPIT_WORKER_SECRET"])
	require.Eventually(t, func() bool {
		_, err = c.ExecuteTool(authed, &bridgepb.ExecuteToolRequest{ToolName: "describe",
			BinaryParameters: map[string][]byte{"value": evil}, Metadata: map[string]string{"binary_format:value": "pickle"}})
		return status.Code(err) != codes.NotFound
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "never accepted through the host bridge")

	// 3. A TCP worker directly: without its server secret nothing runs.
	var plain workerProc
	for _, w := range workersOf(t, app) {
		if strings.HasPrefix(w.env["SNAKEPIT_WORKER_ID"], "plain-") {
			plain = w
		}
	}
	port := tcpPortOf(t, plain.pid)
	wc := dialBridge(t, "127.0.0.1:"+strconv.Itoa(port))
	for _, md := range [][]string{nil, {"x-snakepit-instance-token", flagOf(plain.cmdline, "--snakepit-instance-token")},
		{"x-snakepit-auth", flagOf(plain.cmdline, "--snakepit-instance-token")}} {
		_, err = wc.ExecuteTool(metadata.AppendToOutgoingContext(ctx, md...), &bridgepb.ExecuteToolRequest{ToolName: "describe",
			BinaryParameters: map[string][]byte{"value": evil}, Metadata: map[string]string{"binary_format:value": "pickle"}})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v: %v", md, err)
	}
	// Even with its secret (the host's own credentials), the plain pool's worker refuses pickle.
	resp, err := wc.ExecuteTool(metadata.AppendToOutgoingContext(ctx, "x-snakepit-auth", plain.env["SNAKEPIT_SERVER_SECRET"]),
		&bridgepb.ExecuteToolRequest{ToolName: "describe", BinaryParameters: map[string][]byte{"value": evil},
			Metadata: map[string]string{"binary_format:value": "pickle"}})
	require.NoError(t, err)
	require.False(t, resp.GetSuccess())
	require.Contains(t, resp.GetErrorMessage(), "InvalidArgumentError")

	_, statErr := os.Stat(target)
	require.True(t, errors.Is(statErr, os.ErrNotExist), "the pickle ran: %s exists", target)
}

func harmlessPickle(t *testing.T) []byte {
	t.Helper()
	out, err := exec.Command(testutil.Python(t).Path, "-c", `import pickle, sys; sys.stdout.buffer.write(pickle.dumps({"a": 1}))`).Output()
	require.NoError(t, err)
	return out
}

// tcpPortOf finds the loopback port a worker process listens on.
func tcpPortOf(t *testing.T, pid int) int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	require.NoError(t, err)
	for _, fd := range fds {
		link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	// gRPC may listen on an IPv6 socket with a v4-mapped loopback address.
	var table []byte
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + name)
		require.NoError(t, err)
		table = append(table, b...)
	}
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // LISTEN
			_, hexPort, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			require.NoError(t, err)
			return int(port)
		}
	}
	t.Fatalf("worker %d listens on no TCP port", pid)
	return 0
}

// osPidOf is the OS pid of the worker that answered res.
func osPidOf(t *testing.T, app *snakepit.App, pool string) int {
	t.Helper()
	res, err := app.Execute(t.Context(), "env_var", map[string]any{"name": "SNAKEPIT_RUN_ID"}, snakepit.WithPool(pool))
	require.NoError(t, err)
	for _, w := range workersOf(t, app) {
		if w.env["SNAKEPIT_WORKER_ID"] == res.WorkerID {
			return w.pid
		}
	}
	t.Fatalf("no process for worker %s", res.WorkerID)
	return 0
}

// TestNoWorkOutlivesItsCall: a runaway sync tool, an async tool that
// blocks its event loop and a dropped stream each free their worker
// within the cancel grace; the later calls all succeed.
func TestNoWorkOutlivesItsCall(t *testing.T) {
	const grace = 1500 * time.Millisecond
	app := startApp(t, edgeConfig(t, "sec-outlive-"+strconv.Itoa(os.Getpid()),
		edgePool(t, snakepit.PoolConfig{Name: "one", CancelGrace: grace}),
		edgePool(t, snakepit.PoolConfig{Name: "two", Size: 2, CancelGrace: grace})))
	ctx := t.Context()

	t.Run("runaway sync tool", func(t *testing.T) {
		old := osPidOf(t, app, "one")
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := app.Execute(cctx, "spin", map[string]any{"seconds": 120}, snakepit.WithPool("one"))
		cancel()
		left := time.Now()
		// The caller's own deadline, or the pool's deadline reply, whichever came first.
		require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, snakepit.ErrDeadlineExceeded), "%v", err)
		require.Eventually(t, func() bool { return !testutil.Alive(old) }, grace+5*time.Second, 20*time.Millisecond,
			"the spinning worker is killed")
		t.Logf("spinning worker gone %v after its caller left (grace %v)", time.Since(left).Round(time.Millisecond), grace)
		require.NotEqual(t, old, osPidOf(t, app, "one"), "and replaced")
	})

	t.Run("sync tool that returns soon after the cancel keeps its worker", func(t *testing.T) {
		old := osPidOf(t, app, "one")
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := app.Execute(cctx, "spin", map[string]any{"seconds": 0.6}, snakepit.WithPool("one"))
		cancel()
		require.Error(t, err)
		require.Equal(t, old, osPidOf(t, app, "one"), "done within the grace: not replaced")
	})

	t.Run("async tool blocking its event loop", func(t *testing.T) {
		var before []int
		for _, w := range workersOf(t, app) {
			if strings.HasPrefix(w.env["SNAKEPIT_WORKER_ID"], "two-") {
				before = append(before, w.pid)
			}
		}
		require.Len(t, before, 2)
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		res, err := app.Execute(cctx, "block_loop", map[string]any{"seconds": 120}, snakepit.WithPool("two"))
		cancel()
		left := time.Now()
		require.Error(t, err, "%v", res)
		require.Eventually(t, func() bool { return !testutil.Alive(before[0]) || !testutil.Alive(before[1]) },
			grace+5*time.Second, 20*time.Millisecond, "the blocked worker is killed")
		t.Logf("blocked worker gone %v after its caller left (grace %v)", time.Since(left).Round(time.Millisecond), grace)
		// Six later calls: none reaches the blocked worker.
		for i := range 6 {
			res, err := app.Execute(ctx, "add", map[string]any{"a": i, "b": 1}, snakepit.WithPool("two"), snakepit.WithTimeout(20*time.Second))
			require.NoError(t, err, "call %d", i)
			require.JSONEq(t, strconv.Itoa(i+1), string(res.JSON))
		}
		waitStats(t, app, "two", "the blocked worker replaced", func(s statsView) bool { return s.Restarts >= 1 && s.Ready == 2 })
	})

	t.Run("dropped stream", func(t *testing.T) {
		drop := func() {
			st, err := app.ExecuteStream(ctx, "count_sync", map[string]any{"name": "dropped", "n": 100_000_000}, snakepit.WithPool("one"))
			require.NoError(t, err)
			_, err = st.Recv()
			require.NoError(t, err)
			// No Close: the Stream is dropped.
		}
		drop()
		dropped := time.Now()
		require.Eventually(t, func() bool {
			runtime.GC()
			res, err := app.Execute(ctx, "producer_state", map[string]any{"name": "dropped"}, snakepit.WithPool("one"),
				snakepit.WithTimeout(500*time.Millisecond))
			if err != nil {
				return false
			}
			var st struct{ Closed bool }
			return json.Unmarshal(res.JSON, &st) == nil && st.Closed
		}, 10*time.Second, 50*time.Millisecond, "the generator is closed and the worker free again")
		t.Logf("dropped stream's worker free %v later", time.Since(dropped).Round(time.Millisecond))

		// A stream whose context ends, never read: cancelled too.
		sctx, cancel := context.WithCancel(ctx)
		_, err := app.ExecuteStream(sctx, "count_sync", map[string]any{"name": "ctx", "n": 100_000_000}, snakepit.WithPool("one"))
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond) // let it start producing
		cancel()
		require.Eventually(t, func() bool {
			res, err := app.Execute(ctx, "producer_state", map[string]any{"name": "ctx"}, snakepit.WithPool("one"),
				snakepit.WithTimeout(500*time.Millisecond))
			var st struct{ Closed bool }
			return err == nil && json.Unmarshal(res.JSON, &st) == nil && st.Closed
		}, 10*time.Second, 50*time.Millisecond)
	})
}

// TestExecutionTTLActsWhateverTheCallersDeadline: a call with a short
// deadline on a pool with an execution TTL still has its hung worker
// replaced (the TTL fires while the call's slot is held).
func TestExecutionTTLActsWhateverTheCallersDeadline(t *testing.T) {
	cfg := edgeConfig(t, "sec-ttl-"+strconv.Itoa(os.Getpid()),
		edgePool(t, snakepit.PoolConfig{Name: "ttl", ExecutionTTL: 800 * time.Millisecond, CancelGrace: time.Minute}))
	rec := testutil.NewRecorder[snakepit.Event]()
	cfg.OnEvent = rec.Add
	app := startApp(t, cfg)
	old := osPidOf(t, app, "ttl")
	cctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	_, err := app.Execute(cctx, "spin", map[string]any{"seconds": 120}, snakepit.WithPool("ttl"), snakepit.WithCorrelationID("cid-ttl"))
	cancel()
	require.Error(t, err)
	require.Eventually(t, func() bool { return !testutil.Alive(old) }, 6*time.Second, 20*time.Millisecond,
		"killed by the TTL although the caller left long before it and the cancel grace is a minute")
	// Why it was killed names the call.
	rec.WaitUntil(t, "the kill's reason", func(evs []snakepit.Event) bool {
		for _, e := range evs {
			if c, ok := e.(*snakepit.WorkerTerminated); ok && strings.Contains(c.Exit.KilledFor, "correlation id cid-ttl") &&
				strings.Contains(c.Exit.KilledFor, "execution TTL") {
				return true
			}
		}
		return false
	})
}

// TestStopWithFrozenWorkersTakesAboutOneGrace: 16 SIGSTOPped workers stop
// in parallel.
func TestStopWithFrozenWorkersTakesAboutOneGrace(t *testing.T) {
	const grace = 2 * time.Second
	app, err := snakepit.Start(t.Context(), snakepit.Config{
		Pools:   []snakepit.PoolConfig{{Name: "frozen", Size: 16, StopGrace: grace, StartupConcurrency: 16}},
		DataDir: t.TempDir(), InstanceName: "sec-frozen-" + strconv.Itoa(os.Getpid()), PrivDir: repoPriv(t), Logger: testutil.QuietLogger(t),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	require.NoError(t, app.AwaitInitComplete(ctx)) // every worker, not the first
	pids := testutil.ProcessesOfRun(app.RunID())
	require.Len(t, pids, 16)
	for _, pid := range pids {
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	}
	start := time.Now()
	require.NoError(t, app.Stop(ctx))
	took := time.Since(start)
	t.Logf("Stop with 16 frozen workers took %v (StopGrace %v)", took.Round(time.Millisecond), grace)
	require.Less(t, took, 2*grace, "16 frozen workers stop in parallel")
	require.Empty(t, testutil.ProcessesOfRun(app.RunID()))
}

// selfSigned returns a TLS certificate for 127.0.0.1 and its PEM file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "snakepit test bridge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "bridge-ca.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TestBridgeOverTLS: a bridge bound beyond loopback serves TLS; workers
// given its CA call host tools through it, a plain-text client gets nowhere.
func TestBridgeOverTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	app := startApp(t, snakepit.Config{
		Pools:   []snakepit.PoolConfig{{Name: "tls", Size: 1, AdapterEnv: []string{"SNAKEPIT_BRIDGE_CA_FILE=" + caFile}}},
		DataDir: t.TempDir(), InstanceName: "sec-tls-" + strconv.Itoa(os.Getpid()),
		Bridge: snakepit.BridgeConfig{Mode: snakepit.BridgeExternal, Address: "127.0.0.1:0",
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
	})
	require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "secret_sauce"}, func(context.Context, *snakepit.ToolCall) (any, error) {
		return "over tls", nil
	}))
	res, err := app.Execute(t.Context(), "call_host", map[string]any{"tool": "secret_sauce"})
	require.NoError(t, err)
	require.JSONEq(t, `"over tls"`, string(res.JSON))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = dialBridge(t, app.BridgeAddress()).Ping(ctx, &bridgepb.PingRequest{})
	require.Error(t, err, "a plain-text client cannot talk to the TLS bridge")
	require.NotEqual(t, codes.OK, status.Code(err))
}

// TestBoundedHonestErrors: through the Go API, echoed input stays bounded
// and bad input is a structured error, never a silent success.
func TestBoundedHonestErrors(t *testing.T) {
	app := startApp(t, edgeConfig(t, "sec-errors-"+strconv.Itoa(os.Getpid()), edgePool(t, snakepit.PoolConfig{Name: "e"})))
	ctx := t.Context()
	var serr *snakepit.Error

	_, err := app.Execute(ctx, strings.Repeat("x", 1<<20), nil)
	require.ErrorAs(t, err, &serr)
	require.Equal(t, snakepit.CodeToolNotFound, serr.Code)
	require.Less(t, len(err.Error())+len(serr.PythonTraceback), 64<<10, "a 1 MiB tool name is not echoed back")

	_, err = app.Execute(ctx, "add", map[string]any{"a": []int{1}, "b": []int{2}})
	require.ErrorAs(t, err, &serr)
	require.Equal(t, snakepit.CodeInvalidArgument, serr.Code, "declared types are checked: %v", err)

	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	_, err = app.Execute(ctx, "describe", json.RawMessage(`{"value":`+deep+`}`))
	require.ErrorAs(t, err, &serr)
	require.Equal(t, snakepit.CodeInvalidArgument, serr.Code, "over-deep JSON is invalid input: %v", err)

	for _, tool := range []string{"unserializable", "bad_bytes_inside"} {
		_, err = app.Execute(ctx, tool, nil)
		require.ErrorAs(t, err, &serr)
		require.Equal(t, "EncodingError", serr.PythonType, "%s: no marker reported as success", tool)
	}
}

// TestAWorkerWithWrongCredentialsFailsItsStartAtOnce: a worker the bridge
// refuses does not wait out its start timeout; the pool's start fails with
// an error that names the cause.
func TestAWorkerWithWrongCredentialsFailsItsStartAtOnce(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "grpc_server.py")
	require.NoError(t, os.WriteFile(script, []byte(`import os
os.environ["SNAKEPIT_WORKER_SECRET"] = "not-the-one-the-host-set"
from snakepit_bridge.server import run_main
run_main()
`), 0o644))
	app := startAppNoWait(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "wrong", Size: 1}},
		Script: script, PythonPath: []string{repoPriv(t)}, DataDir: t.TempDir(),
		InstanceName: "sec-creds-" + strconv.Itoa(os.Getpid())})
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := app.AwaitReady(ctx)
	took := time.Since(start)
	require.Error(t, err)
	require.ErrorContains(t, err, "refused this worker's credentials")
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	t.Logf("the pool's start failed %v after Start: %v", took.Round(time.Millisecond), sperr.Truncate(err.Error(), 300))
}

// TestAWorkerOfAnotherProtocolVersionFailsItsStart: the ready file's
// handshake names the worker's protocol version; another one than the
// host's fails the pool's start at once, naming both.
func TestAWorkerOfAnotherProtocolVersionFailsItsStart(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "grpc_server.py")
	require.NoError(t, os.WriteFile(script, []byte(`from snakepit_bridge import server
server.PROTOCOL_VERSION = 99
server.run_main()
`), 0o644))
	app := startAppNoWait(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "v99", Size: 1}},
		Script: script, PythonPath: []string{repoPriv(t)}, DataDir: t.TempDir(),
		InstanceName: "sec-version-" + strconv.Itoa(os.Getpid())})
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := app.AwaitReady(ctx)
	require.Error(t, err)
	require.ErrorContains(t, err, `the worker speaks bridge protocol version "99", this host speaks version 1`)
	t.Logf("the pool's start failed %v after Start", time.Since(start).Round(time.Millisecond))
}
