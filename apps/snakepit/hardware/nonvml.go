//go:build !cgo

package hardware

func detectCUDA() CUDA {
	return CUDA{Reason: "this binary was built without cgo, which NVML needs (CGO_ENABLED=1)"}
}
