package procs

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// runHelper is the body of the helper process the parent-death tests start:
// it spawns "sleep 30" via Start with ParentDeathSignal SIGKILL, prints the
// child's pid and waits to be killed. In mode "goroutine" the spawn happens
// on a short-lived goroutine that locks its thread and exits without
// unlocking it, which ends that thread: the child must survive that. That
// mode prints the spawning thread's id on a second line, so the test can
// see the thread end.
func runHelper(mode string) int {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	spawn := func() error {
		cmd := exec.Command(sleep, "30")
		if _, err := Start(cmd, SpawnOptions{ParentDeathSignal: syscall.SIGKILL}); err != nil {
			return err
		}
		fmt.Println(cmd.Process.Pid)
		if mode == "goroutine" {
			fmt.Println(syscall.Gettid())
		}
		return nil
	}
	switch mode {
	case "direct":
		err = spawn()
	case "goroutine":
		// Keep the main thread to ourselves, so the spawning goroutine
		// runs on another thread, which the runtime then really ends (the
		// main thread would only be wedged).
		runtime.LockOSThread()
		done := make(chan error)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			done <- spawn()
		}()
		err = <-done
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	time.Sleep(time.Minute) // the test kills us long before
	return 0
}
