package snakepit

import (
	"testing"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m)
}
