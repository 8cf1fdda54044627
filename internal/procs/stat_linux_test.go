package procs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    procStat
		wantErr bool
	}{
		{"plain", "42 (sleep) S 1 42 7 34816 42 4194304", procStat{'S', 1, 42, 7}, false},
		{"zombie", "42 (sleep) Z 1 42 42 0", procStat{'Z', 1, 42, 42}, false},
		{"comm with spaces and parens", "42 (a) b) (c ) R 9 10 11 0", procStat{'R', 9, 10, 11}, false},
		{"no paren", "42 sleep S 1 42 42", procStat{}, true},
		{"short", "42 (sleep) S 1", procStat{}, true},
		{"bad number", "42 (sleep) S x 42 42", procStat{}, true},
		{"bad state", "42 (sleep) SS 1 42 42", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.data))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	require.True(t, procStat{state: 'Z'}.dead())
	require.True(t, procStat{state: 'X'}.dead())
	require.False(t, procStat{state: 'S'}.dead())
}
