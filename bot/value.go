package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Interactive element IDs. Every action_id the bot draws starts with
// actionPrefix so that clicks on other apps' or other packages' elements are
// told apart (see Bot.AddAction).
const (
	actionPrefix        = "sdbmaint:"
	actStartMaintenance = "start-maintenance" // the preflight report's button; value is the cluster
	reasonCallbackID    = "sdbmaint:reason"   // the skip-reason modal
	reasonBlockID       = "reason"
	reasonActionID      = "reason"
)

func actionID(a string) string { return actionPrefix + a }

// gateValue is what a card button carries: the run, the phase and the run
// version the card was drawn for. It is everything a click needs, so cards
// keep working after the bot restarts; the engine's compare-and-set on the
// version decides whether the click still applies.
type gateValue struct {
	RunID   string
	Phase   runbook.PhaseName
	Version int64
}

// encodeValue packs a gate value: "RUN|PHASE|VERSION", far under Slack's
// 2,000-character limit for any sane run ID.
func encodeValue(runID string, phase runbook.PhaseName, version int64) string {
	return runID + "|" + string(phase) + "|" + strconv.FormatInt(version, 10)
}

// maxRunID bounds a run ID in a button value; the engine's are 16 hex
// digits, and the card store keeps at most 64.
const maxRunID = 64

// decodeValue parses a gate value, rejecting anything the bot did not draw:
// it accepts exactly the strings encodeValue writes, so "+3", "007" or
// "-0" for a version and odd characters in a run ID are refused rather
// than read as something close to them.
func decodeValue(s string) (gateValue, error) {
	if len(s) > maxButtonValue {
		return gateValue{}, fmt.Errorf("button value is %d characters, more than a card ever carries", len(s))
	}
	parts := strings.Split(s, "|")
	if len(parts) != 3 || parts[0] == "" {
		return gateValue{}, fmt.Errorf("button value %q is not RUN|PHASE|VERSION", clip(s, 80))
	}
	if !validRunID(parts[0]) {
		return gateValue{}, fmt.Errorf("button value has bad run ID %q: want up to %d letters, digits, '-' or '_'", clip(parts[0], 40), maxRunID)
	}
	phase := runbook.PhaseName(parts[1])
	known := false
	for _, p := range runbook.Phases {
		if p == phase {
			known = true
		}
	}
	if !known {
		return gateValue{}, fmt.Errorf("button value names unknown phase %q", clip(parts[1], 40))
	}
	v, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || v < 0 || strconv.FormatInt(v, 10) != parts[2] {
		return gateValue{}, fmt.Errorf("button value has bad version %q: want a decimal number without sign or leading zeros", clip(parts[2], 40))
	}
	return gateValue{RunID: parts[0], Phase: phase, Version: v}, nil
}

// validRunID reports whether id can be a run's ID: what newRunID makes (hex)
// and what tests and imports use, never spaces, separators or controls.
func validRunID(id string) bool {
	if id == "" || len(id) > maxRunID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// gateActions are the card buttons that become a runbook.Decision directly.
var gateActions = map[string]runbook.Action{}

func init() {
	for _, a := range []runbook.Action{
		runbook.ActApprove, runbook.ActAbort, runbook.ActRetry, runbook.ActSkip, runbook.ActRerunPreflight,
		runbook.ActEndRun, runbook.ActMaintenanceDone, runbook.ActDetectionOff, runbook.ActSkipPhase, runbook.ActOverride,
	} {
		gateActions[actionID(string(a))] = a
	}
}

// needsReason reports whether an action asks for a reason in a modal first.
func needsReason(a runbook.Action) bool { return a == runbook.ActSkip || a == runbook.ActSkipPhase }

// reasonMeta is the private_metadata of the reason modal: the action, the
// gate value and where to answer, so the submission stands on its own.
type reasonMeta struct {
	Action  runbook.Action
	Value   gateValue
	Channel string
}

func (m reasonMeta) encode() string {
	return string(m.Action) + "|" + encodeValue(m.Value.RunID, m.Value.Phase, m.Value.Version) + "|" + m.Channel
}

func decodeReasonMeta(s string) (reasonMeta, error) {
	i := strings.IndexByte(s, '|')
	j := strings.LastIndexByte(s, '|')
	if i < 0 || j <= i {
		return reasonMeta{}, fmt.Errorf("modal metadata %q is not ACTION|VALUE|CHANNEL", clip(s, 80))
	}
	a := runbook.Action(s[:i])
	if !needsReason(a) {
		return reasonMeta{}, fmt.Errorf("modal metadata names action %q, which takes no reason", clip(string(a), 40))
	}
	v, err := decodeValue(s[i+1 : j])
	if err != nil {
		return reasonMeta{}, err
	}
	return reasonMeta{Action: a, Value: v, Channel: s[j+1:]}, nil
}
