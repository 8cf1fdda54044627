package snakepit

import (
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
	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/worker"
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

// stillAliased are the public names that are still aliases of implementation
// types, to be given types of their own. The list only shrinks: a new alias
// into actors/* or internal/* fails the test below.
var stillAliased = []string{
	"Binary", "CircuitChanged", "Category", "Error", "ParamSpec", "RecycleReason", "SessionState",
	"SessionUpdate", "StreamToolHandler", "ToolCall", "ToolHandler", "ToolSpec", "WorkerCrashed", "WorkerRecycled",
}

// go doc of the package names no implementation type in a type definition
// beyond the ones listed in stillAliased.
func TestTheDocShowsNoNewAliasIntoTheImplementation(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "doc", "-short", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	alias := regexp.MustCompile(`^type (\w+) = (\w+)\.`)
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := alias.FindStringSubmatch(line); m != nil {
			found = append(found, m[1])
		}
	}
	for _, name := range found {
		assert.Containsf(t, stillAliased, name, "type %s is a new alias into the implementation: give it a type of its own", name)
	}
	for _, name := range stillAliased {
		if !slices.Contains(found, name) {
			t.Errorf("%s is no longer an alias: remove it from stillAliased", name)
		}
	}
}
