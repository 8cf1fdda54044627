package hardware

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDetectCPU(t *testing.T) {
	info := Detect(context.Background())
	assert.Greater(t, info.CPU.Logical, 0)
	assert.Greater(t, info.CPU.MemoryBytes, uint64(0))
	assert.NotEmpty(t, info.CPU.Arch)
	assert.NotEmpty(t, info.Summary())
}

func TestDeviceForSpreadsWorkersRoundRobin(t *testing.T) {
	devs := []string{"0", "1", "2"}
	for n, want := range map[int]string{1: "0", 2: "1", 3: "2", 4: "0", 7: "0", 0: ""} {
		assert.Equal(t, want, DeviceFor(devs, n), n)
	}
	assert.Equal(t, "", DeviceFor(nil, 1))
	for id, want := range map[string]int{"gpu-w1": 1, "my-pool-w12": 12, "w": 0, "pool-wx": 0, "pool-w0": 0} {
		assert.Equal(t, want, SlotNumber(id), id)
	}
}
