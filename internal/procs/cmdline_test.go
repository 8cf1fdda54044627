package procs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlagValue(t *testing.T) {
	argv := []string{"python3", "grpc_server.py", "--run-id", "r1", "--pool=p1", "--empty=", "--last"}
	tests := []struct {
		name   string
		argv   []string
		flag   string
		want   string
		wantOK bool
	}{
		{"separate value", argv, "--run-id", "r1", true},
		{"equals value", argv, "--pool", "p1", true},
		{"empty equals value", argv, "--empty", "", true},
		{"flag without dashes", argv, "run-id", "r1", true},
		{"last without value", argv, "--last", "", false},
		{"absent", argv, "--port", "", false},
		{"prefix is not the flag", []string{"--run-idx", "a", "--run-idx=b"}, "--run-id", "", false},
		{"first occurrence wins", []string{"--a", "1", "--a=2"}, "--a", "1", true},
		{"value may look like a flag", []string{"--a", "--b"}, "--a", "--b", true},
		{"empty flag", argv, "", "", false},
		{"nil argv", nil, "--run-id", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FlagValue(tt.argv, tt.flag)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestHasScript(t *testing.T) {
	scripts := []string{"/opt/snakepit/priv/python/grpc_server.py", "grpc_server_threaded.py"}
	tests := []struct {
		name    string
		argv    []string
		scripts []string
		want    bool
	}{
		{"by base name", []string{"python3", "grpc_server.py", "--port", "1"}, scripts, true},
		{"by full path", []string{"python3", "/srv/app/grpc_server.py"}, scripts, true},
		{"second script", []string{"python3", "-u", "./grpc_server_threaded.py"}, scripts, true},
		{"compiled file differs", []string{"python3", "grpc_server.pyc"}, scripts, false},
		{"substring differs", []string{"python3", "my_grpc_server.py"}, scripts, false},
		{"no scripts", []string{"python3", "grpc_server.py"}, nil, false},
		{"empty script name", []string{"python3", ""}, []string{""}, false},
		{"nil argv", nil, scripts, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, HasScript(tt.argv, tt.scripts))
		})
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		o    Outcome
		want string
	}{
		{Gone, "gone"},
		{Terminated, "terminated"},
		{Killed, "killed"},
		{Survived, "survived"},
		{Outcome(9), "Outcome(9)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.o.String())
	}
}

func TestTargetString(t *testing.T) {
	require.Equal(t, "process group 7", Target{PID: 3, PGID: 7}.String())
	require.Equal(t, "pid 3", Target{PID: 3}.String())
}
