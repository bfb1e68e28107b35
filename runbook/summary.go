package runbook

import (
	"fmt"
	"strings"
	"time"
)

// Summary is what a finished (or running) run amounts to, for people: the
// downtime, the time of each phase, who approved each gate, and anything
// that went wrong, loudly.
type Summary struct {
	RunID     string
	Cluster   string
	Status    RunStatus
	StartedBy string
	Note      string
	// Downtime runs from the first stop command to the MA answering SQL
	// again (to now while it is still down).
	Downtime time.Duration
	Down     bool // nodes were stopped and the MA has not answered since
	Phases   []PhaseSummary
	// PostCheckFailed lists the post-checks that failed.
	PostCheckFailed []Check
	// DetectionLeftOff is set when the run turned leaf_failure_detection
	// off and did not restore it.
	DetectionLeftOff bool
}

// PhaseSummary is one phase in a Summary.
type PhaseSummary struct {
	Name   PhaseName
	Status PhaseStatus
	Took   time.Duration // from start (or approval) to end; 0 if it never ran
	By     string        // who decided its gate; "auto_approve" when auto-approved
	At     time.Time
	Action Action
	Note   string
}

// Summarize builds the run's summary at now.
func Summarize(r *Run, now time.Time) Summary {
	s := Summary{RunID: r.ID, Cluster: r.Cluster, Status: r.Status, StartedBy: r.StartedBy, Note: r.Note}
	s.Downtime = r.Downtime(now)
	s.Down = !r.DownSince.IsZero() && r.UpAt.IsZero()
	if !r.Status.Open() && s.Down {
		s.Downtime = r.EndedAt.Sub(r.DownSince)
	}
	for _, p := range r.Phases {
		ps := PhaseSummary{Name: p.Name, Status: p.Status, Note: p.Note}
		if !p.StartedAt.IsZero() {
			end := p.EndedAt
			if end.IsZero() {
				end = now
			}
			ps.Took = end.Sub(p.StartedAt)
		}
		switch {
		case p.Approval != nil:
			ps.By, ps.At, ps.Action = p.Approval.By, p.Approval.At, p.Approval.Action
		case p.Auto:
			ps.By, ps.At, ps.Action = whoAuto, p.StartedAt, ActApprove
		}
		s.Phases = append(s.Phases, ps)
	}
	if r.PostCheck != nil {
		s.PostCheckFailed = r.PostCheck.Failed()
	}
	if r.DetectionChanged {
		st := r.Step(stepIDRestoreDetection)
		s.DetectionLeftOff = st == nil || st.Status != StepDone
	}
	return s
}

// String renders the summary as a few lines of text.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s on %s: %s", s.RunID, s.Cluster, strings.ToUpper(string(s.Status)))
	if s.Note != "" {
		fmt.Fprintf(&b, " (%s)", s.Note)
	}
	b.WriteString("\n")
	if s.Downtime > 0 {
		fmt.Fprintf(&b, "  downtime   %s (first stop to the MA answering SQL)", round(s.Downtime))
		if s.Down {
			b.WriteString(" — THE MA HAS NOT ANSWERED SINCE")
		}
		b.WriteString("\n")
	}
	for _, p := range s.Phases {
		fmt.Fprintf(&b, "  %-14s %-9s", p.Name, p.Status)
		if p.Took > 0 {
			fmt.Fprintf(&b, " %8s", round(p.Took))
		} else {
			b.WriteString("         ")
		}
		if p.By != "" {
			fmt.Fprintf(&b, "  %s by %s at %s", p.Action, p.By, p.At.Local().Format("15:04:05"))
		}
		if p.Note != "" {
			fmt.Fprintf(&b, "  (%s)", p.Note)
		}
		b.WriteString("\n")
	}
	for _, c := range s.PostCheckFailed {
		fmt.Fprintf(&b, "  !! POST-CHECK FAILED: %s: %s\n", c.Name, c.Detail)
	}
	if s.DetectionLeftOff {
		b.WriteString("  !! leaf_failure_detection WAS TURNED OFF AND NOT RESTORED\n")
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
