package snakepit

import (
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/bridge"
	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
)

// The public enums carry the very values the actors use: a conversion at the
// boundary is a plain type conversion, so they must agree.
func TestPublicEnumsMatchTheActors(t *testing.T) {
	assert.Equal(t, string(worker.ProfileProcess), string(ProfileProcess))
	assert.Equal(t, string(worker.ProfileThread), string(ProfileThread))
	assert.Equal(t, string(worker.TransportUnix), string(TransportUnix))
	assert.Equal(t, string(worker.TransportTCP), string(TransportTCP))
	assert.Equal(t, int(pool.AffinityHint), int(AffinityHint))
	assert.Equal(t, int(pool.AffinityStrictQueue), int(AffinityStrictQueue))
	assert.Equal(t, int(pool.AffinityStrictFailFast), int(AffinityStrictFailFast))
	assert.Equal(t, "strict_queue", AffinityStrictQueue.String())
	for pub, in := range map[PoolState]string{PoolStarting: pool.StateStarting, PoolReady: pool.StateReady,
		PoolInitFailed: pool.StateInitFailed, PoolStopping: pool.StateStopping} {
		assert.Equal(t, in, string(pub))
	}
	for pub, in := range map[CircuitState]pool.BreakerState{CircuitClosed: pool.BreakerClosed, CircuitOpen: pool.BreakerOpen,
		CircuitHalfOpen: pool.BreakerHalfOpen} {
		assert.Equal(t, string(in), string(pub))
	}
	for pub, in := range map[RecycleReason]lifecycle.Reason{RecycleTTL: lifecycle.ReasonTTL, RecycleMaxRequests: lifecycle.ReasonMaxRequests,
		RecycleMemory: lifecycle.ReasonMemory, RecycleIdle: lifecycle.ReasonIdle, RecycleManual: lifecycle.ReasonManual} {
		assert.Equal(t, string(in), string(pub))
	}
	for pub, in := range map[BridgeMode]bridge.Mode{BridgeInternal: bridge.ModeInternal, BridgeUnix: bridge.ModeUnix,
		BridgeExternal: bridge.ModeExternal, BridgeOff: bridge.ModeOff} {
		assert.Equal(t, in, pub.internal())
	}
	for pub, in := range map[ExitClass]worker.ExitClass{ExitClean: worker.ExitClean, ExitError: worker.ExitError,
		ExitSegfault: worker.ExitSegfault, ExitAbort: worker.ExitAbort, ExitKilled: worker.ExitKilled,
		ExitSignal: worker.ExitSignal, ExitUnknown: worker.ExitUnknown} {
		assert.Equal(t, string(in), string(pub))
	}
}

// Every field of the public config structs reaches the actor's struct, and
// the public ones have every field the actors' have.
func TestPublicConfigStructsConvertWhole(t *testing.T) {
	seed := 0
	var hb HeartbeatConfig
	fill(t, reflect.ValueOf(&hb).Elem(), &seed)
	sameFields(t, reflect.ValueOf(hb), reflect.ValueOf(hb.internal()))
	assert.Equal(t, reflect.TypeOf(heartbeat.Config{}).NumField(), reflect.TypeOf(hb).NumField())

	cb := CrashBarrier{TaintDuration: time.Second, TaintOn: []ExitClass{ExitAbort}, NoRetry: true,
		Breaker: BreakerConfig{Threshold: 3, Window: time.Minute, OpenFor: 2 * time.Second}}
	in := cb.internal()
	assert.Equal(t, pool.CrashBarrier{TaintDuration: time.Second, TaintOn: []worker.ExitClass{worker.ExitAbort}, NoRetry: true,
		Breaker: pool.BreakerConfig{Threshold: 3, Window: time.Minute, OpenFor: 2 * time.Second}}, in)
	assert.Nil(t, CrashBarrier{}.internal().TaintOn, "nil keeps the pool's default classes")
	assert.Equal(t, reflect.TypeOf(pool.CrashBarrier{}).NumField(), reflect.TypeOf(cb).NumField())
	assert.Equal(t, reflect.TypeOf(pool.BreakerConfig{}).NumField(), reflect.TypeOf(cb.Breaker).NumField())
}

func sameFields(t *testing.T, pub, in reflect.Value) {
	t.Helper()
	for i := 0; i < pub.NumField(); i++ {
		name := pub.Type().Field(i).Name
		f := in.FieldByName(name)
		require.Truef(t, f.IsValid(), "field %s is missing in %s", name, in.Type())
		assert.Equalf(t, pub.Field(i).Interface(), f.Interface(), "field %s", name)
	}
}

// interop are the only declarations whose go doc may mention actors or
// generated protobuf (the package doc's "Interop with actors").
var interop = []string{"StartIn", "Pool", "Registry", "System", "ErrorFromProto", "RemoteOptions"}

// go doc of the package reads on its own: no alias, no type from actors/*,
// internal/* or generated protobuf outside the interop section.
func TestTheDocReadsOnItsOwn(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "doc", "-all", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	impl := regexp.MustCompile(`\b(pool|worker|sperr|bridge|sessions|lifecycle|heartbeat|registry|cleanup|procreg|manager|instance|procs|jsonany|rundir|bundle)\.[A-Z]`)
	foreign := regexp.MustCompile(`\b(actor|remote|poolpb|bridgepb|controlpb)\.[A-Z]`)
	decl := regexp.MustCompile(`^(?:func (?:\([^)]*\) )?|type |var |const )(\w+)`)
	current, inPackageDoc := "", true
	for _, line := range strings.Split(string(out), "\n") {
		if strings.ToUpper(line) == line && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, " ") {
			inPackageDoc = false // CONSTANTS, VARIABLES, FUNCTIONS, TYPES
		}
		if m := decl.FindStringSubmatch(line); m != nil {
			current = m[1]
		}
		assert.NotRegexp(t, `^type \w+ = `, line, "an alias: give it a type of its own")
		if inPackageDoc {
			continue
		}
		assert.NotRegexpf(t, impl, line, "go doc names an implementation type (in %s)", current)
		if foreign.MatchString(line) && !slices.Contains(interop, current) {
			t.Errorf("go doc of %s mentions actors or protobuf outside the interop section: %q", current, line)
		}
	}
}

// The actors' errors become the package's own at the boundary, whole, and
// back again for what a host tool returns.
func TestErrorsConvertAtTheBoundary(t *testing.T) {
	cause := errors.New("root cause")
	in := sperr.Wrap(sperr.CodeWorkerExit, cause, "worker died").WithDetail("signal", "killed")
	in.Pool, in.WorkerID, in.PythonType = "p", "p-w1", "RuntimeError"

	var pub *Error
	require.ErrorAs(t, public(in), &pub)
	assert.Equal(t, Error{Category: CategoryWorker, Code: CodeWorkerExit, Message: "worker died",
		Details: map[string]string{"signal": "killed"}, PythonType: "RuntimeError", WorkerID: "p-w1", Pool: "p", cause: cause}, *pub)
	assert.Equal(t, in.Error(), pub.Error(), "one format")
	assert.ErrorIs(t, pub, ErrWorkerExit)
	assert.ErrorIs(t, pub, cause)
	assert.NotErrorIs(t, pub, ErrShutdown)

	deep := fmt.Errorf("pool p: %w", in)
	got := public(deep)
	assert.Equal(t, deep.Error(), got.Error(), "a wrapped error keeps its message")
	assert.ErrorIs(t, got, ErrWorkerExit)
	require.ErrorAs(t, got, &pub)

	plain := errors.New("plain")
	assert.Same(t, plain, public(plain))
	assert.NoError(t, public(nil))

	back := toInternal(fmt.Errorf("handler: %w", NewError(CodeInvalidArgument, "bad n")))
	var se *sperr.Error
	require.ErrorAs(t, back, &se)
	assert.Equal(t, sperr.CodeInvalidArgument, se.Code)
	assert.Equal(t, sperr.CategoryValidation, se.Category)
	assert.Same(t, plain, toInternal(plain))

	assert.Nil(t, ErrorFromProto(nil))
	assert.ErrorIs(t, ErrorFromProto(sperr.ToProto(in)), ErrWorkerExit)
	assert.ErrorIs(t, NewError(CodeQueueTimeout, "x"), ErrTimeout, "a category sentinel")
}
