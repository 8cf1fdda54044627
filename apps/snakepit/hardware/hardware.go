// Package hardware detects what a host can give its workers: the CPU (model,
// cores, instruction-set flags, memory) with gopsutil, and NVIDIA GPUs with
// NVML through go-nvml. A machine without the NVIDIA driver has no CUDA: the
// library is looked for at run time (dlopen), and its absence is a reason,
// never a crash. It also picks a GPU for each worker (CUDA_VISIBLE_DEVICES).
package hardware

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

// Info is what Detect found.
type Info struct {
	CPU  CPU  `json:"cpu"`
	CUDA CUDA `json:"cuda"`
}

// CPU is the machine's processor and memory.
type CPU struct {
	Model    string `json:"model"`
	Arch     string `json:"arch"`
	Physical int    `json:"physical_cores"`
	Logical  int    `json:"logical_cores"`
	// Flags are the instruction-set extensions ML libraries care about
	// that this CPU has (avx, avx2, avx512f, fma, sse4_2, f16c, amx, neon...).
	Flags       []string `json:"flags"`
	MemoryBytes uint64   `json:"memory_bytes"`
}

// CUDA is what NVML reported: the GPUs and the driver, or why there are none.
type CUDA struct {
	Available bool `json:"available"`
	// Reason says why CUDA is not available ("no NVIDIA driver (libnvidia-ml.so.1 not found)", ...).
	Reason        string `json:"reason,omitempty"`
	DriverVersion string `json:"driver_version,omitempty"`
	// CUDAVersion is the newest CUDA the driver supports ("12.4").
	CUDAVersion string `json:"cuda_version,omitempty"`
	GPUs        []GPU  `json:"gpus,omitempty"`
}

// GPU is one NVIDIA device.
type GPU struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	UUID        string `json:"uuid"`
	MemoryBytes uint64 `json:"memory_bytes"`
	MemoryUsed  uint64 `json:"memory_used_bytes"`
}

// mlFlags are the CPU flags worth reporting.
var mlFlags = []string{"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
	"amx_tile", "amx_bf16", "amx_int8", "asimd", "neon", "sve"}

// Detect looks at this machine.
func Detect(ctx context.Context) Info {
	return Info{CPU: detectCPU(ctx), CUDA: DetectCUDA()}
}

func detectCPU(ctx context.Context) CPU {
	c := CPU{Arch: runtime.GOARCH, Logical: runtime.NumCPU()}
	if n, err := cpu.CountsWithContext(ctx, false); err == nil && n > 0 {
		c.Physical = n
	}
	if infos, err := cpu.InfoWithContext(ctx); err == nil && len(infos) > 0 {
		c.Model = strings.TrimSpace(infos[0].ModelName)
		for _, f := range mlFlags {
			if slices.Contains(infos[0].Flags, f) {
				c.Flags = append(c.Flags, f)
			}
		}
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		c.MemoryBytes = vm.Total
	}
	return c
}

// DetectCUDA asks NVML for the GPUs (a binary built without cgo cannot:
// it reports no CUDA with that reason).
func DetectCUDA() CUDA { return detectCUDA() }

// Summary is one line about info, for logs and doctor.
func (i Info) Summary() string {
	s := fmt.Sprintf("%s, %d cores (%d physical), %.1f GiB", i.CPU.Model, i.CPU.Logical, i.CPU.Physical,
		float64(i.CPU.MemoryBytes)/(1<<30))
	if !i.CUDA.Available {
		return s + "; no CUDA: " + i.CUDA.Reason
	}
	names := make([]string, len(i.CUDA.GPUs))
	for k, g := range i.CUDA.GPUs {
		names[k] = g.Name
	}
	return fmt.Sprintf("%s; CUDA %s (driver %s): %s", s, i.CUDA.CUDAVersion, i.CUDA.DriverVersion, strings.Join(names, ", "))
}

// DeviceFor is the CUDA_VISIBLE_DEVICES value of a pool's worker: the
// worker with 1-based slot number n gets devices[(n-1) % len(devices)], so
// workers spread over the GPUs one each, round robin. No devices: "".
func DeviceFor(devices []string, n int) string {
	if len(devices) == 0 || n < 1 {
		return ""
	}
	return devices[(n-1)%len(devices)]
}

// SlotNumber is the slot number in a worker id ("<pool>-w<N>"), 0 when
// there is none.
func SlotNumber(workerID string) int {
	i := strings.LastIndex(workerID, "-w")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(workerID[i+2:])
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// Indices are the devices of GPUs as CUDA_VISIBLE_DEVICES values ("0", "1", ...).
func Indices(gpus []GPU) []string {
	out := make([]string, len(gpus))
	for i, g := range gpus {
		out[i] = strconv.Itoa(g.Index)
	}
	return out
}
