package sperr

import (
	"regexp"
	"strings"
)

// The codes of errors a tool raised that the host recognises from their
// message (as upstream's error parser does): each is a refinement of
// python_exception, so errors.Is(err, ErrPythonException) still matches.
const (
	CodeShapeMismatch  = "shape_mismatch"
	CodeDTypeMismatch  = "dtype_mismatch"
	CodeDeviceMismatch = "device_mismatch"
	CodeOutOfMemory    = "out_of_memory"
)

// refines names the code each refined code narrows.
var refines = map[string]string{
	CodeShapeMismatch:  CodePythonException,
	CodeDTypeMismatch:  CodePythonException,
	CodeDeviceMismatch: CodePythonException,
	CodeOutOfMemory:    CodePythonException,
}

// mlError is what classify recognised.
type mlError struct {
	code       string
	suggestion string
	details    map[string]string
}

var (
	shapeRe = regexp.MustCompile(`(?i)shapes? .*(not aligned|cannot be multiplied)|could not be broadcast together|` +
		`size of tensor a \(\d+\) must match the size of tensor b|cannot reshape (array|tensor) of size|` +
		`shape mismatch|size mismatch|incompatible shapes|expected input batch_size`)
	shapeGroupRe = regexp.MustCompile(`\((\d+(?:\s*[,x]\s*\d*)*)\)`)
	matmulRe     = regexp.MustCompile(`\((\d+x\d+) and (\d+x\d+)\)`)

	dtypeRe = []*regexp.Regexp{
		regexp.MustCompile(`(?i)expected scalar type (\w+) but found (\w+)`),
		regexp.MustCompile(`(?i)found dtype (\w+) but expected (\w+)`),
		regexp.MustCompile(`(?i)same dtype, but got:? (\w+) != (\w+)`),
		regexp.MustCompile(`(?i)cannot cast array data from dtype\('(\w+)'\) to dtype\('(\w+)'\)`),
		regexp.MustCompile(`(?i)(dtype mismatch)`),
	}

	deviceRe = []*regexp.Regexp{
		regexp.MustCompile(`(?i)expected all tensors to be on the same device.*?devices?,? ([\w:]+) and ([\w:]+)`),
		regexp.MustCompile(`(?i)expected object of device type (\w+) but got device type (\w+)`),
		regexp.MustCompile(`(?i)input type \((torch\.[\w.]+)\) and weight type \((torch\.[\w.]+)\) should be the same`),
	}

	cudaOOMRe   = regexp.MustCompile(`(?i)cuda out of memory|cuda error: out of memory|out of memory while trying to allocate|cudaErrorMemoryAllocation`)
	triedRe     = regexp.MustCompile(`(?i)tried to allocate ([\d.]+ ?[KMGT]i?B)`)
	gpuRe       = regexp.MustCompile(`(?i)GPU (\d+)`)
	capacityRe  = regexp.MustCompile(`(?i)([\d.]+ ?[KMGT]i?B) total capacity`)
	allocatedRe = regexp.MustCompile(`(?i)([\d.]+ ?[KMGT]i?B) already allocated`)
)

// classifyLimit is how much of a message classify reads: the libraries put
// what it looks for first, and a long message must not cost a long scan.
const classifyLimit = 2048

// classify recognises shape, dtype and device mismatches and out-of-memory
// errors in a Python exception's type and message; ok is false otherwise.
func classify(pyType, message string) (mlError, bool) {
	if len(message) > classifyLimit {
		message = message[:classifyLimit]
	}
	// Words each kind's messages contain, looked for before any regexp
	// runs: most exceptions are none of these, and then cost one lower-case
	// copy and a few substring searches.
	lower := strings.ToLower(message)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(lower, w) {
				return true
			}
		}
		return false
	}
	if pyType == "OutOfMemoryError" || pyType == "MemoryError" || has("out of memory", "memoryallocation") {
		if m, ok := classifyOOM(pyType, message); ok {
			return m, true
		}
	}
	if !has("device", "weight type", "dtype", "scalar type", "cannot cast", "shape", "size", "broadcast") {
		return mlError{}, false
	}
	for _, re := range deviceRe {
		if !re.MatchString(message) {
			continue
		}
		if g := re.FindStringSubmatch(message); g != nil {
			return mlError{code: CodeDeviceMismatch, details: map[string]string{"devices": g[1] + " and " + g[2]},
				suggestion: "move the model and every input to one device (tensor.to(device)) before the call; " +
					"a worker pinned to one GPU (CUDA_VISIBLE_DEVICES) sees it as cuda:0"}, true
		}
	}
	for _, re := range dtypeRe {
		if !re.MatchString(message) {
			continue
		}
		if g := re.FindStringSubmatch(message); g != nil {
			d := map[string]string{}
			if len(g) == 3 {
				d["dtypes"] = g[1] + " and " + g[2]
			}
			return mlError{code: CodeDTypeMismatch, details: d,
				suggestion: "convert the input to the dtype the model expects (tensor.float(), array.astype(...)) before the call"}, true
		}
	}
	if shapeRe.MatchString(message) {
		d := map[string]string{}
		var shapes []string
		if g := matmulRe.FindStringSubmatch(message); g != nil { // torch: (2x3 and 4x5)
			shapes = []string{"(" + g[1] + ")", "(" + g[2] + ")"}
		} else {
			for _, g := range shapeGroupRe.FindAllStringSubmatch(message, 4) {
				shapes = append(shapes, "("+g[1]+")")
			}
		}
		if len(shapes) > 0 {
			d["shapes"] = strings.Join(shapes, " vs ")
		}
		return mlError{code: CodeShapeMismatch, details: d,
			suggestion: "check the input's shape against what the tool expects (the shapes are in the details); " +
				"reshape, transpose or batch it before the call"}, true
	}
	return mlError{}, false
}

func classifyOOM(pyType, message string) (mlError, bool) {
	if cudaOOMRe.MatchString(message) || pyType == "OutOfMemoryError" {
		d := map[string]string{"device": "cuda"}
		if g := gpuRe.FindStringSubmatch(message); g != nil {
			d["device"] = "cuda:" + g[1]
		}
		for key, re := range map[string]*regexp.Regexp{"requested": triedRe, "capacity": capacityRe, "allocated": allocatedRe} {
			if g := re.FindStringSubmatch(message); g != nil {
				d[key] = g[1]
			}
		}
		return mlError{code: CodeOutOfMemory, details: d,
			suggestion: "lower the batch size, free cached memory (torch.cuda.empty_cache()), use mixed precision, " +
				"or give each worker a GPU of its own (one worker per GPU)"}, true
	}
	if pyType == "MemoryError" {
		return mlError{code: CodeOutOfMemory, details: map[string]string{"device": "cpu"},
			suggestion: "lower the batch size or the data a call holds; memory_threshold_mb recycles workers that keep growing"}, true
	}
	return mlError{}, false
}
