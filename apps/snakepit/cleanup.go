package snakepit

import (
	"fmt"
	"time"

	"github.com/snakepit-go/snakepit/actors/registry/cleanup"
)

// CleanupReport says what one cleanup pass did (App.CleanupReports): the
// pass at start ends what earlier runs of the instance left behind, the
// pass at stop what this run left (README_PROCESS_MANAGEMENT.md).
type CleanupReport struct {
	Killed    []CleanedProcess
	Forgotten int // process-registry entries dropped
	Kept      int // registry entries of hosts still alive, left alone
	Took      time.Duration
	// DryRun: nothing was ended or dropped (the App's own passes never are).
	DryRun bool
}

// CleanedProcess is one process a cleanup pass ended (or tried to).
type CleanedProcess struct {
	PID, PGID int
	RunID     string // the run it belonged to
	WorkerID  string // when the process registry knew it
	Reason    string // why it was ours to end
	Outcome   KillOutcome
	Err       error
}

// KillOutcome is how ending a process went.
type KillOutcome string

// The kill outcomes.
const (
	KillGone       KillOutcome = "gone"       // nothing was alive; no signal sent
	KillTerminated KillOutcome = "terminated" // it died after SIGTERM, within the grace
	KillKilled     KillOutcome = "killed"     // it needed SIGKILL
	KillSurvived   KillOutcome = "survived"   // still alive after SIGKILL, or could not be signalled
)

// Survivors are the processes still alive after SIGKILL.
func (r CleanupReport) Survivors() []CleanedProcess {
	var out []CleanedProcess
	for _, k := range r.Killed {
		if k.Outcome == KillSurvived || k.Err != nil {
			out = append(out, k)
		}
	}
	return out
}

// String is a one-line summary.
func (r CleanupReport) String() string {
	if r.DryRun {
		return fmt.Sprintf("%d would be killed, %d entries would be forgotten, %d kept (dry run), in %s",
			len(r.Killed), r.Forgotten, r.Kept, r.Took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d killed, %d survivors, %d entries forgotten, %d kept, in %s",
		len(r.Killed), len(r.Survivors()), r.Forgotten, r.Kept, r.Took.Round(time.Millisecond))
}

func cleanupReportFrom(r cleanup.Report) CleanupReport {
	out := CleanupReport{Forgotten: r.Forgotten, Kept: r.Kept, Took: r.Took, DryRun: r.DryRun}
	for _, k := range r.Killed {
		out.Killed = append(out.Killed, CleanedProcess{PID: k.PID, PGID: k.PGID, RunID: k.RunID, WorkerID: k.WorkerID,
			Reason: k.Reason, Outcome: KillOutcome(k.Outcome.String()), Err: k.Err})
	}
	return out
}

// CleanupReports returns what cleanup did at start (earlier runs'
// leftovers and the rogue sweep) and at stop (this run's processes still
// alive after the workers stopped; normally none). The stop report is set
// once Stop has returned.
func (a *App) CleanupReports() (atStart, atStop CleanupReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return cleanupReportFrom(a.startReport), cleanupReportFrom(a.stopReport)
}
