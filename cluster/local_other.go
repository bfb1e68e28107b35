//go:build !unix

package cluster

import "os/exec"

// setProcessGroup does nothing where process groups do not exist; the
// shell alone is killed on cancellation.
func setProcessGroup(*exec.Cmd) {}
