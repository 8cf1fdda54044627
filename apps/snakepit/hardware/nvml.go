//go:build cgo

package hardware

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

func detectCUDA() CUDA { return detectWith(nvml.New()) }

// detectWith asks lib (nvml.New(), or go-nvml's mocks in tests).
func detectWith(lib nvml.Interface) CUDA {
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return CUDA{Reason: "no NVIDIA driver (libnvidia-ml.so.1 not found)"}
	default:
		return CUDA{Reason: "NVML did not start: " + nvml.ErrorString(ret)}
	}
	defer lib.Shutdown()
	c := CUDA{}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		c.DriverVersion = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS && v > 0 {
		c.CUDAVersion = fmt.Sprintf("%d.%d", v/1000, v%1000/10)
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		c.Reason = "NVML could not count devices: " + nvml.ErrorString(ret)
		return c
	}
	for i := range n {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			continue
		}
		g := GPU{Index: i}
		g.Name, _ = d.GetName()
		g.UUID, _ = d.GetUUID()
		if m, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryBytes, g.MemoryUsed = m.Total, m.Used
		}
		c.GPUs = append(c.GPUs, g)
	}
	if len(c.GPUs) == 0 {
		c.Reason = "the NVIDIA driver reports no GPU"
		return c
	}
	c.Available = true
	return c
}
