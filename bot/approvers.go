package bot

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// groupLister reads the members of a Slack user group (usergroups.users.list).
type groupLister interface {
	GetUserGroupMembersContext(ctx context.Context, group string, opts ...slack.GetUserGroupMembersOption) ([]string, error)
}

var _ groupLister = (*slack.Client)(nil)

// Approvers decides who may approve gates: the user IDs in the config, and
// the members of the user groups (S…) in it. Group members are read from
// Slack and kept for GroupTTL, so a burst of clicks costs one API call and a
// removal from the group takes effect within a minute.
type Approvers struct {
	users  map[string]bool
	groups []string
	api    groupLister
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]*groupMembers
}

type groupMembers struct {
	fetch   sync.Mutex // one fetch per group at a time; the others wait for it
	at      time.Time
	members map[string]bool
}

// staleGrace is how long an expired member list is still used when Slack
// cannot be reached: better than refusing every approver during an outage,
// and short enough that a removed person cannot approve for long.
const staleGrace = 10 * time.Minute

var _ runbook.Approvers = (*Approvers)(nil)

// NewApprovers returns the approver policy for ids (user IDs U…/W… and user
// group IDs S…). An ID of another shape is an error naming it.
func NewApprovers(ids []string, api groupLister, ttl time.Duration, now func() time.Time) (*Approvers, error) {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	a := &Approvers{users: map[string]bool{}, api: api, ttl: ttl, now: now, cache: map[string]*groupMembers{}}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		switch {
		case isUserID(id):
			a.users[id] = true
		case isGroupID(id):
			a.groups = append(a.groups, id)
		default:
			return nil, fmt.Errorf("approver %q is neither a Slack user ID (U…) nor a user group ID (S…)", id)
		}
	}
	return a, nil
}

func isGroupID(s string) bool {
	return len(s) >= 2 && len(s) <= 20 && s[0] == 'S' && isUserID("U"+s[1:])
}

// MayApprove reports whether user may decide gates. The cluster does not
// matter yet: one approver list serves every cluster. The error is
// Unavailable when a group's members cannot be read and no recent list is
// at hand.
func (a *Approvers) MayApprove(ctx context.Context, cluster, user string) (bool, error) {
	if a.users[user] {
		return true, nil
	}
	var firstErr error
	for _, g := range a.groups {
		members, err := a.members(ctx, g)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if members[user] {
			return true, nil
		}
	}
	if firstErr != nil {
		return false, firstErr
	}
	return false, nil
}

// Describe names who may approve, for refusals: "<@U1>, <!subteam^S1>".
func (a *Approvers) Describe() string {
	var parts []string
	for u := range a.users {
		parts = append(parts, "<@"+u+">")
	}
	for _, g := range a.groups {
		parts = append(parts, "<!subteam^"+g+">")
	}
	if len(parts) == 0 {
		return "nobody (no approvers are configured)"
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (a *Approvers) members(ctx context.Context, group string) (map[string]bool, error) {
	a.mu.Lock()
	gm := a.cache[group]
	if gm == nil {
		gm = &groupMembers{}
		a.cache[group] = gm
	}
	a.mu.Unlock()

	gm.fetch.Lock()
	defer gm.fetch.Unlock()
	now := a.now()
	if gm.members != nil && now.Sub(gm.at) < a.ttl {
		return gm.members, nil
	}
	list, err := a.api.GetUserGroupMembersContext(ctx, group)
	if err != nil {
		if gm.members != nil && now.Sub(gm.at) < a.ttl+staleGrace {
			return gm.members, nil
		}
		return nil, runbook.Wrap(runbook.Unavailable, err, "could not read the members of user group %s from Slack", group)
	}
	m := make(map[string]bool, len(list))
	for _, u := range list {
		m[u] = true
	}
	gm.members, gm.at = m, now
	return m, nil
}
