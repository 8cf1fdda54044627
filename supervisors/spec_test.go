package supervisors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsInvalidSpecs(t *testing.T) {
	props := actor.PropsFromFunc(func(actor.Context) {})
	ok := ChildSpec{Name: "ok", Props: props}
	tests := []struct {
		name string
		spec Spec
		msg  string
	}{
		{"empty name", Spec{Children: []ChildSpec{ok, {Props: props}}}, "empty child name"},
		{"slash in name", Spec{Children: []ChildSpec{{Name: "a/b", Props: props}}}, "contains '/'"},
		{"duplicate name", Spec{Children: []ChildSpec{ok, {Name: "x", Props: props}, ok}}, `duplicate child name "ok"`},
		{"nil props", Spec{Children: []ChildSpec{{Name: "a"}}}, "nil Props"},
		{"negative shutdown", Spec{Children: []ChildSpec{{Name: "a", Props: props, Shutdown: -1}}}, "negative Shutdown"},
		{"negative start timeout", Spec{Children: []ChildSpec{{Name: "a", Props: props, StartTimeout: -time.Second}}}, "negative StartTimeout"},
		{"unknown restart type", Spec{Children: []ChildSpec{{Name: "a", Props: props, Restart: 7}}}, "unknown restart type"},
		{"negative max restarts", Spec{MaxRestarts: -1}, "negative MaxRestarts"},
		{"negative window", Spec{Window: -time.Second}, "negative Window"},
		{"unknown strategy", Spec{Strategy: 9}, "unknown strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.spec)
			require.Nil(t, p)
			require.ErrorIs(t, err, ErrInvalidSpec)
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestSpecDefaults(t *testing.T) {
	got := Spec{Children: []ChildSpec{{Name: "a"}}}.normalized()
	require.Equal(t, DefaultMaxRestarts, got.MaxRestarts)
	require.Equal(t, DefaultWindow, got.Window)
	require.NotNil(t, got.Logger)
	require.Equal(t, DefaultShutdown, got.Children[0].Shutdown)
	require.Equal(t, DefaultStartTimeout, got.Children[0].StartTimeout)

	zero := Spec{MaxRestarts: 0, Window: time.Second}.normalized()
	require.Equal(t, 0, zero.MaxRestarts, "zero restarts with a window means give up at once")

	in := []ChildSpec{{Name: "a"}}
	_ = Spec{Children: in}.normalized()
	require.Zero(t, in[0].Shutdown, "the caller's slice is not modified")
}

func TestStrings(t *testing.T) {
	require.Equal(t, "one_for_one", OneForOne.String())
	require.Equal(t, "one_for_all", OneForAll.String())
	require.Equal(t, "rest_for_one", RestForOne.String())
	require.Equal(t, "Strategy(9)", Strategy(9).String())
	require.Equal(t, "permanent", Permanent.String())
	require.Equal(t, "transient", Transient.String())
	require.Equal(t, "temporary", Temporary.String())
	require.Equal(t, "RestartType(7)", RestartType(7).String())
}
