package supervisors

import "time"

// intensity is OTP's restart intensity for one supervisor: at most max restarts within a sliding
// window. It is a plain value driven with explicit times.
type intensity struct {
	max    int
	window time.Duration
	stamps []time.Time // restarts still inside the window, oldest first
}

func newIntensity(max int, window time.Duration) intensity {
	return intensity{max: max, window: window}
}

// allow records a restart at now and reports true, or reports false (recording nothing) when that
// restart would make more than max restarts within the window ending at now.
func (in *intensity) allow(now time.Time) bool {
	cutoff := now.Add(-in.window)
	keep := in.stamps[:0]
	for _, t := range in.stamps {
		if t.After(cutoff) {
			keep = append(keep, t)
		}
	}
	in.stamps = keep
	if len(in.stamps) >= in.max {
		return false
	}
	in.stamps = append(in.stamps, now)
	return true
}
