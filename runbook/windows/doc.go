// Package windows schedules maintenance windows: recurring times, given by a
// cron spec, when a cluster may be taken down. It announces each window
// ahead of time at the configured lead times, opens a run through the engine
// when the window starts (preflight only: every gate still waits for an
// approval), lets an approver skip a window, and says when a window closes
// before its stop gate was approved.
//
// Every firing (an announcement, a start, a window-end notice, a skip) is
// claimed in the Store under a unique key before it is carried out, so that
// of several schedulers sharing one store (bot replicas, or a restart during
// a window) exactly one carries out each firing, and a crash never repeats
// one. A firing that was due more than a grace period ago when the scheduler
// gets to it (the bot was down) is reported as missed, never carried out
// late.
//
// The package knows nothing of Slack: it tells the outside world through a
// Notifier, which the bot implements, and opens runs through Runs, which
// *runbook.Engine satisfies.
package windows
