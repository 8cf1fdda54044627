package auth

import (
	"context"
	"testing"
)

func TestSecrets(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if len(a) != 64 || a == b {
		t.Fatalf("secrets %q and %q: want two different 64-hex-digit values", a, b)
	}
	for _, tc := range []struct {
		got, want string
		ok        bool
	}{
		{a, a, true}, {b, a, false}, {"", a, false}, {"", "", false}, {a[:10], a, false},
	} {
		if Equal(tc.got, tc.want) != tc.ok {
			t.Errorf("Equal(%q, %q) = %v", tc.got, tc.want, !tc.ok)
		}
	}
	md, err := Secret(a).GetRequestMetadata(context.Background())
	if err != nil || md[Header] != a || Secret(a).RequireTransportSecurity() {
		t.Fatalf("metadata %v, %v", md, err)
	}
}
