//go:build !unix

package worker

import (
	"context"
	"errors"
	"time"
)

// errUnsupported: process control is Unix-only for now (process groups,
// signals); see README_PROCESS_MANAGEMENT.md.
var errUnsupported = errors.New("worker: Python workers are supported on Unix only")

type process struct {
	pid, pgid int
	done      chan struct{}
	sock      string
}

func startProcess(Config, func(string, *pyRecord)) (*process, error) { return nil, errUnsupported }
func (p *process) exited() bool                                      { return true }
func (p *process) waitReady(context.Context) (Handshake, error)      { return Handshake{}, errUnsupported }
func (p *process) kill()                                             {}
func (p *process) stop(time.Duration) ExitInfo                       { return ExitInfo{} }
func (p *process) exitInfo() ExitInfo                                { return ExitInfo{} }
func (p *process) waitExit(time.Duration) (ExitInfo, bool)           { return ExitInfo{}, false }
