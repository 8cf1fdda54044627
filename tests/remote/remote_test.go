//go:build unix

// Package remote tests a pool called from another node: `snakepit serve`
// runs in its own process (its own actor system, remote enabled, Python
// workers), and this test process — a second node — calls its pool by PID
// with the poolpb messages over protoactor remote. It is a package of its
// own because protoactor's remote.Start sets gRPC's global logger, which
// must happen before any other gRPC activity in the process.
//
// This package does not shut the caller's remote down and does not run
// goleak: protoactor's Remote.Shutdown races with the removal of an
// endpoint that was lost earlier (endpoint_manager.go: stop sets
// em.connections = nil while removeEndpoint reads it, unsynchronised), which
// -race reports. The process ends right after the test, which ends its
// remote too. The leak checks of our own code run in package tests.
package remote

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

var (
	callerOnce   sync.Once
	callerSystem *actor.ActorSystem
	// clusterSecret is shared by this node and the nodes it starts.
	clusterSecret = "remote-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
)

// callerNode is this process's node: an actor system with remote, started
// once per process (see the package comment).
func callerNode() *actor.ActorSystem {
	callerOnce.Do(func() {
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		callerSystem = actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
		remote.NewRemote(callerSystem, remote.Configure("127.0.0.1", 0,
			snakepit.RemoteOptions(snakepit.RemoteAuth{Secret: clusterSecret})...)).Start()
	})
	return callerSystem
}

// node is a `snakepit serve` process.
type node struct {
	cmd     *exec.Cmd
	address string
	poolID  string
	runID   string
	done    chan struct{}
}

func startNode(t *testing.T) *node {
	t.Helper()
	testutil.Python(t)
	root := testutil.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "snakepit")
	build := exec.Command("go", "build", "-o", bin, "./cmd/snakepit")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	cmd := exec.Command(bin, "serve", "-listen", "127.0.0.1:0", "-workers", "1")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SNAKEPIT_PRIV_DIR="+filepath.Join(root, "priv", "python"), "SNAKEPIT_DATA_DIR="+t.TempDir(),
		snakepit.EnvRemoteSecret+"="+clusterSecret)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("snakepit serve stderr:\n%s", stderr.String())
		}
	})
	require.NoError(t, cmd.Start())
	n := &node{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "pool ") {
				lines <- sc.Text()
			}
		}
		_ = cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // only if the test did not stop it
		<-n.done
	})
	select {
	case line := <-lines:
		// pool NAME address HOST:PORT id PID-ID run RUN-ID
		f := strings.Fields(line)
		require.Len(t, f, 8, line)
		n.address, n.poolID, n.runID = f[3], f[5], f[7]
	case <-n.done:
		t.Fatal("snakepit serve exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("snakepit serve was not ready within 60s")
	}
	return n
}

func TestActorCallsAPoolOnAnotherNode(t *testing.T) {
	n := startNode(t)
	// First: remote.Start sets gRPC's global logger, which must not race
	// with a gRPC client of this test.
	system := callerNode()

	// Without the cluster secret, the node's listener refuses a caller
	// before protoactor reads anything of it.
	conn, err := grpc.NewClient(n.address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	rc := remote.NewRemotingClient(conn)
	for _, md := range [][]string{nil, {"x-snakepit-auth", "guess"}, {"x-snakepit-auth", clusterSecret + "x"}} {
		_, err := rc.ListProcesses(metadata.AppendToOutgoingContext(t.Context(), md...), &remote.ListProcessesRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%v: %v", md, err)
		st, err := rc.Receive(metadata.AppendToOutgoingContext(t.Context(), md...))
		if err == nil {
			_, err = st.Recv()
		}
		require.Equal(t, codes.Unauthenticated, status.Code(err), "stream %v: %v", md, err)
	}

	c := testutil.NewPoolCaller(actor.NewPID(n.address, n.poolID))
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return c }))
	defer func() { _ = system.Root.StopFuture(pid).Wait() }()

	system.Root.Send(pid, &poolpb.Execute{RequestId: "a", Tool: "add", ArgsJson: []byte(`{"a":20,"b":22}`)})
	res := c.Next(t).(*poolpb.Result)
	require.Nil(t, res.GetError(), "%v", res.GetError())
	assert.Equal(t, "a", res.GetRequestId())
	assert.JSONEq(t, "42", string(res.GetResultJson()))

	system.Root.Send(pid, &poolpb.Execute{RequestId: "s", Tool: "stream_count", ArgsJson: []byte(`{"n":3}`), Stream: true})
	var got []int
	for {
		ch := c.Next(t).(*poolpb.Chunk)
		require.Nil(t, ch.GetError())
		if ch.GetIsFinal() {
			break
		}
		var m struct{ Index int }
		require.NoError(t, json.Unmarshal(ch.GetData(), &m))
		got = append(got, m.Index)
	}
	assert.Equal(t, []int{0, 1, 2}, got, "chunks arrive in order across nodes")

	system.Root.Send(pid, &poolpb.Execute{RequestId: "e", Tool: "raise_error", ArgsJson: []byte(`{"kind":"value","message":"remote"}`)})
	res = c.Next(t).(*poolpb.Result)
	serr := snakepit.ErrorFromProto(res.GetError())
	require.NotNil(t, serr)
	assert.ErrorIs(t, serr, snakepit.ErrPythonException)
	assert.Equal(t, "ValueError", serr.PythonType)
	assert.Equal(t, "remote", serr.Message)

	// A message of a type the node does not know must not crash it: the
	// connection is dropped, the caller's node reconnects, calls go on.
	system.Root.Send(c.Pool, unknownMessage(t))
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		require.True(t, time.Now().Before(deadline), "the node did not serve again after the unknown message")
		id := "after-" + strconv.Itoa(attempt)
		system.Root.Send(pid, &poolpb.Execute{RequestId: id, Tool: "ping", ArgsJson: []byte(`{}`)})
		var r *poolpb.Result
		select {
		case m := <-c.Replies:
			r = m.(*poolpb.Result)
		case <-time.After(time.Second):
			continue // lost while the connection was re-established
		}
		require.Nil(t, r.GetError())
		assert.JSONEq(t, `"pong"`, string(r.GetResultJson()))
		break
	}
	select {
	case <-n.done:
		t.Fatal("the node crashed on a message of an unknown type")
	default:
	}

	// The node stops cleanly on SIGTERM and leaves no worker behind.
	require.NoError(t, n.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatal("snakepit serve did not stop on SIGTERM")
	}
	assert.Equal(t, 0, n.cmd.ProcessState.ExitCode())
	assert.Empty(t, testutil.ProcessesOfRun(n.runID), "the node's workers are gone")
}

// unknownMessage is a protobuf message of a type only this process knows
// (built at run time), so the other node cannot decode it.
func unknownMessage(t *testing.T) proto.Message {
	t.Helper()
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("snakepit_unknown_test.proto"),
		Package: proto.String("snakepit.unknowntest"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Mystery"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("text"), Number: proto.Int32(1), JsonName: proto.String("text"),
				Type:  descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}},
		}},
	}, nil)
	require.NoError(t, err)
	md := fd.Messages().ByName("Mystery")
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("text"), protoreflect.ValueOfString("who am I"))
	return m
}
