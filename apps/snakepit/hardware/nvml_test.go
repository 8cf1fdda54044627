//go:build cgo

package hardware

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With the NVIDIA library absent (every CI machine), CUDA is simply not
// available, with the reason.
func TestNoDriverIsNoCUDANotACrash(t *testing.T) {
	c := detectWith(nvml.New(nvml.WithLibraryPath("/nonexistent/libnvidia-ml.so.1")))
	assert.False(t, c.Available)
	assert.Contains(t, c.Reason, "no NVIDIA driver")
	assert.Empty(t, c.GPUs)
}

func TestDetectCUDAOnAMockedDGX(t *testing.T) {
	c := detectWith(dgxa100.New())
	require.True(t, c.Available, c.Reason)
	require.Len(t, c.GPUs, 8)
	for i, g := range c.GPUs {
		assert.Equal(t, i, g.Index)
		assert.Contains(t, g.Name, "A100")
		assert.NotEmpty(t, g.UUID)
	}
	assert.NotEmpty(t, c.DriverVersion)
	assert.Equal(t, []string{"0", "1", "2", "3", "4", "5", "6", "7"}, Indices(c.GPUs))
}

func TestDetectCUDAReasons(t *testing.T) {
	failing := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }}
	c := detectWith(failing)
	assert.False(t, c.Available)
	assert.Contains(t, c.Reason, "NVML did not start")

	none := &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "550.54", nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 12040, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return 0, nvml.SUCCESS },
	}
	c = detectWith(none)
	assert.False(t, c.Available)
	assert.Equal(t, "the NVIDIA driver reports no GPU", c.Reason)
	assert.Equal(t, "12.4", c.CUDAVersion)
	assert.Equal(t, "550.54", c.DriverVersion)
}
