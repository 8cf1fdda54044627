package bridge

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

func TestListenModes(t *testing.T) {
	lis, addr, err := Listen("", "")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(addr, "127.0.0.1:"), addr)
	require.NoError(t, lis.Close())

	lis, addr, err = Listen(ModeExternal, "127.0.0.1:0")
	require.NoError(t, err)
	require.Equal(t, lis.Addr().String(), addr)
	require.NoError(t, lis.Close())

	dir, err := os.MkdirTemp("", "spb") // short: socket paths are limited
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "b.sock")
	lis, addr, err = Listen(ModeUnix, path)
	require.NoError(t, err)
	require.Equal(t, "unix:"+path, addr)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "only the owner may connect")
	// A stale socket left by a killed host is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "stale.sock"), Net: "unix"})
	require.NoError(t, err)
	stale.SetUnlinkOnClose(false)
	require.NoError(t, stale.Close())
	again, _, err := Listen(ModeUnix, filepath.Join(dir, "stale.sock"))
	require.NoError(t, err, "a stale socket is replaced")
	require.NoError(t, again.Close())
	require.NoError(t, lis.Close())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o600))
	for _, tc := range []struct {
		mode Mode
		addr string
		want string
	}{
		{ModeUnix, filepath.Join(dir, "file"), "not a socket"},
		{ModeUnix, "", "needs a socket path"},
		{ModeExternal, "", "needs an address"},
		{"carrier-pigeon", "", "unknown listener mode"},
	} {
		_, _, err := Listen(tc.mode, tc.addr)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestActorServesAndListensAgainAfterARestart(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10 * time.Millisecond))
	defer sys.Shutdown()
	lis, addr, err := Listen(ModeInternal, "")
	require.NoError(t, err)
	props := Props(ActorConfig{
		Server: &Server{Tools: NewTools()}, Credentials: testCreds, Listener: lis,
		Listen: func() (net.Listener, error) { l, _, err := Listen(ModeExternal, addr); return l, err },
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := bridgepb.NewBridgeServiceClient(conn)
	ping := func() error {
		ctx, cancel := context.WithTimeout(authed(context.Background()), 5*time.Second)
		defer cancel()
		_, err := client.Ping(ctx, &bridgepb.PingRequest{}, grpc.WaitForReady(true))
		return err
	}

	pid := sys.Root.Spawn(props)
	require.NoError(t, ping())
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
	ctx, cancel := context.WithTimeout(authed(context.Background()), 300*time.Millisecond)
	_, err = client.Ping(ctx, &bridgepb.PingRequest{})
	cancel()
	require.Error(t, err, "stopped: nothing listens")

	// What a supervisor's restart does: the same props, a new actor; it
	// listens on the same address, which workers already know.
	pid = sys.Root.Spawn(props)
	require.NoError(t, ping())
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
}
