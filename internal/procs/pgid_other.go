//go:build !unix

package procs

// pgidOf reports 0: the platform has no process groups.
func pgidOf(int) (int, error) {
	return 0, nil
}
