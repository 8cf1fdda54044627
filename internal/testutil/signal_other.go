//go:build !unix

package testutil

import "os"

func signalZero(pid int) bool {
	_, err := os.FindProcess(pid)
	return err == nil
}
