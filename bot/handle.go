package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// This file is the handler core both transports feed: a slash command or an
// interaction in, an acknowledgement plus asynchronous work out. Nothing
// here blocks on I/O before the acknowledgement.

// handleCommand answers one /sdbmaint invocation. Its log line is written
// after the acknowledgement (see spawn): nothing that can wait on I/O comes
// before it.
func (b *Bot) handleCommand(sc slack.SlashCommand) ack {
	a := b.command(sc)
	a.after = func() {
		b.log.Info("slash command", "user", sc.UserID, "channel", sc.ChannelID, "text", clip(sc.Text, 200))
	}
	return a
}

func (b *Bot) command(sc slack.SlashCommand) ack {
	if b.closing.Load() {
		return ack{body: ephemeral(restarting)}
	}
	parsed := Parse(sc.Text, b.verbs, b.opts.Clusters.Names())
	if parsed.Command == nil {
		return ack{body: ephemeral(textMessage(parsed.Reply))}
	}
	cmd := *parsed.Command
	inv := Invocation{Command: cmd, User: sc.UserID, Channel: sc.ChannelID, TriggerID: sc.TriggerID}
	reply := func(ctx context.Context, r Reply) { b.respond(ctx, sc, r) }
	fail := func(ctx context.Context, err error, what string) {
		reply(ctx, Reply{Message: textMessage(b.showError(err, what, "verb", cmd.Verb, "cluster", cmd.Cluster))})
	}

	switch cmd.Verb {
	case VerbHelp:
		return ack{body: ephemeral(HelpMessage(b.verbs))}
	case VerbClusters:
		return ack{work: func(ctx context.Context) {
			runs, err := b.engine.OpenRuns(ctx)
			if err != nil {
				fail(ctx, err, "listing open runs")
				return
			}
			open := map[string]*runbook.Run{}
			for _, r := range runs {
				open[r.Cluster] = r
			}
			reply(ctx, Reply{Message: ClustersMessage(b.opts.Clusters.Names(), open)})
		}}
	case VerbPreflight:
		return ack{
			body: ephemeral(textMessage(fmt.Sprintf("Running preflight on `%s`… (read-only)", escapeMrkdwn(cmd.Cluster)))),
			work: func(ctx context.Context) {
				rep, err := b.preflight(ctx, cmd.Cluster)
				if err != nil {
					fail(ctx, err, "preflight of "+cmd.Cluster)
					return
				}
				reply(ctx, Reply{Message: PreflightMessage(rep, sc.UserID), InChannel: true})
			}}
	case VerbStart:
		return ack{
			body: ephemeral(textMessage(fmt.Sprintf("Opening a maintenance run on `%s`: running preflight first…", escapeMrkdwn(cmd.Cluster)))),
			work: func(ctx context.Context) {
				if text := b.start(ctx, cmd.Cluster, sc.UserID, sc.ChannelID); text != "" {
					reply(ctx, Reply{Message: textMessage(text)})
				}
			}}
	case VerbStatus:
		return ack{work: func(ctx context.Context) {
			runs, err := b.engine.OpenRuns(ctx)
			if err != nil {
				fail(ctx, err, "reading open runs")
				return
			}
			if cmd.Cluster != "" {
				var only []*runbook.Run
				for _, r := range runs {
					if r.Cluster == cmd.Cluster {
						only = append(only, r)
					}
				}
				if len(only) == 0 {
					hist, err := b.engine.History(ctx, cmd.Cluster, 1)
					if err == nil && len(hist) > 0 {
						reply(ctx, Reply{Message: textMessage(fmt.Sprintf("No run is open on `%s`. The last one: %s, started by %s %s.",
							escapeMrkdwn(cmd.Cluster), runState(hist[0]), who(hist[0].StartedBy), slackDateTime(hist[0].StartedAt)))})
						return
					}
				}
				runs = only
			}
			reply(ctx, Reply{Message: StatusMessage(runs, b.board.links(ctx, runs), b.clock.Now())})
		}}
	case VerbAbort:
		return ack{work: func(ctx context.Context) {
			reply(ctx, Reply{Message: b.abortPrompt(ctx, cmd.Cluster)})
		}}
	case VerbHistory:
		return ack{work: func(ctx context.Context) {
			runs, err := b.engine.History(ctx, cmd.Cluster, 10)
			if err != nil {
				fail(ctx, err, "reading history")
				return
			}
			reply(ctx, Reply{Message: HistoryMessage(cmd.Cluster, runs)})
		}}
	}
	run := b.runVerb[cmd.Verb]
	if run == nil { // a Verb without a function cannot be added; be safe anyway
		return ack{body: ephemeral(textMessage("That command is not available in this sdbmaint."))}
	}
	return ack{work: func(ctx context.Context) {
		r, err := run(ctx, inv)
		if err != nil {
			fail(ctx, err, cmd.Verb)
			return
		}
		if r.Message.Text != "" || len(r.Message.Blocks) > 0 {
			reply(ctx, r)
		}
	}}
}

// preflight runs the checks of a cluster without opening a run.
func (b *Bot) preflight(ctx context.Context, cluster string) (*runbook.Report, error) {
	c, err := b.opts.Clusters.Cluster(ctx, cluster)
	if err != nil {
		return nil, err
	}
	if c.Preflight == nil {
		return nil, runbook.Errorf(runbook.Invalid, "cluster %s has no preflight checks configured", cluster)
	}
	return c.Preflight.Preflight(ctx)
}

// start opens a run on cluster for user. It returns what to tell the user
// privately, or "" when the card says it all.
func (b *Bot) start(ctx context.Context, cluster, user, channel string) string {
	cardChannel := b.opts.Channel
	if cardChannel == "" {
		cardChannel = channel
	}
	b.board.expect(cluster, cardChannel)
	res, err := b.engine.Start(ctx, runbook.StartRequest{Cluster: cluster, By: user})
	if err != nil || res.Existing != nil {
		b.board.unexpect(cluster, cardChannel)
	}
	if err != nil {
		return b.showError(err, "starting maintenance of "+cluster, "cluster", cluster, "user", user)
	}
	if ex := res.Existing; ex != nil {
		text := fmt.Sprintf("A run on `%s` is already open: started by %s %s, %s.", escapeMrkdwn(cluster),
			who(ex.StartedBy), slackDateTime(ex.StartedAt), runState(ex))
		if link := b.board.link(ctx, ex.ID); link != "" {
			text += " <" + link + "|Open its card>."
		}
		return text
	}
	b.logFor(res.Run).Info("run opened", "user", user)
	b.board.ensure(res.Run, cardChannel)
	if cardChannel != channel {
		if strings.HasPrefix(cardChannel, "#") {
			return fmt.Sprintf("Run opened; its card is in %s.", escapeMrkdwn(cardChannel))
		}
		return fmt.Sprintf("Run opened; its card is in <#%s>.", cardChannel)
	}
	return ""
}

// abortPrompt answers /sdbmaint abort: it decides nothing itself. Once
// nodes may be down an abort means recovery, so the person sees what abort
// does at this moment and confirms with a button; that click is a decision
// like any card button's, checked by the engine's compare-and-set.
func (b *Bot) abortPrompt(ctx context.Context, cluster string) Message {
	r, err := b.engine.OpenRun(ctx, cluster)
	if err != nil {
		return textMessage(b.showError(err, "reading the open run of "+cluster, "cluster", cluster))
	}
	if r == nil {
		return textMessage(fmt.Sprintf("No run is open on `%s`; there is nothing to abort.", escapeMrkdwn(cluster)))
	}
	next := ""
	if r.Current != "" {
		next = b.engine.Describe(r, r.Current)
	}
	return AbortMessage(r, next, runbook.Choices(r, b.clock.Now()), b.board.link(ctx, r.ID))
}

// respond answers a slash command through its response_url.
func (b *Bot) respond(ctx context.Context, sc slack.SlashCommand, r Reply) {
	msg := &slack.WebhookMessage{Text: r.Message.Text, ResponseType: slack.ResponseTypeEphemeral}
	if r.InChannel {
		msg.ResponseType = slack.ResponseTypeInChannel
	}
	if len(r.Message.Blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: r.Message.Blocks}
	}
	if sc.ResponseURL == "" {
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, r.Message)
		return
	}
	err := withRetry(ctx, b.clock, func() error {
		return slack.PostWebhookCustomHTTPContext(ctx, sc.ResponseURL, b.hc, msg)
	})
	if err != nil {
		b.log.Warn("reply to slash command failed", "user", sc.UserID, "err", err)
	}
}

// ephemeral shows m to user in channel, privately.
func (b *Bot) ephemeral(ctx context.Context, channel, user string, m Message) {
	err := withRetry(ctx, b.clock, func() error {
		_, err := b.api.PostEphemeralContext(ctx, channel, user, m.options()...)
		return err
	})
	if err != nil {
		b.log.Warn("ephemeral message failed", "user", user, "channel", channel, "err", err)
	}
}

// handleInteraction answers a click or a modal submission.
func (b *Bot) handleInteraction(cb slack.InteractionCallback) ack {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) == 0 {
			return ack{}
		}
		if b.closing.Load() {
			// The card keeps working after the restart; the click can be
			// repeated then.
			b.log.Info("click ignored while draining", "user", cb.User.ID)
			return ack{}
		}
		return ack{work: func(ctx context.Context) {
			for _, a := range cb.ActionCallback.BlockActions {
				b.click(ctx, cb, a)
			}
		}}
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID != reasonCallbackID {
			return ack{}
		}
		return b.submitReason(cb)
	}
	return ack{}
}

// click handles one button.
func (b *Bot) click(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	user, channel := cb.User.ID, cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	log := b.log.With("user", user, "action", a.ActionID)
	if action, ok := gateActions[a.ActionID]; ok {
		v, err := decodeValue(a.Value)
		if err != nil {
			log.Warn("click with a value the bot did not draw", "err", err)
			b.ephemeral(ctx, channel, user, textMessage("That button is not one sdbmaint drew; nothing was done."))
			return
		}
		// The click tells where the card is: after a restart that lost the
		// card's location, this finds it again. A private message (the
		// confirmation /sdbmaint abort shows) is not the card.
		if !cb.Container.IsEphemeral {
			b.board.learn(ctx, v.RunID, channel, cb.Container.MessageTs)
		}
		if needsReason(action) {
			meta := reasonMeta{Action: action, Value: v, Channel: channel}.encode()
			title, prompt := "Skip a step", "Why is the failed step skipped? The reason goes to the audit log and the card."
			if action == runbook.ActSkipPhase {
				title, prompt = "Skip "+string(v.Phase), fmt.Sprintf("Why is *%s* skipped? The reason goes to the audit log and the card.", v.Phase)
			}
			err := withRetry(ctx, b.clock, func() error {
				_, err := b.api.OpenViewContext(ctx, cb.TriggerID, ReasonModal(title, prompt, meta))
				return err
			})
			if err != nil {
				log.Warn("opening the reason dialog failed", "err", err)
				b.ephemeral(ctx, channel, user, textMessage("Slack did not open the dialog for the reason; click again."))
			}
			return
		}
		b.decide(ctx, runbook.Decision{RunID: v.RunID, Phase: v.Phase, Version: v.Version, Action: action, By: user}, channel)
		return
	}
	if a.ActionID == actionID(actStartMaintenance) {
		// The value is what the button carried; the run is opened on the
		// configured name it matches, as if it had been typed.
		cluster, reply := matchCluster(a.Value, b.opts.Clusters.Names())
		if reply != "" {
			b.ephemeral(ctx, channel, user, textMessage(reply))
			return
		}
		if text := b.start(ctx, cluster, user, channel); text != "" {
			b.ephemeral(ctx, channel, user, textMessage(text))
		}
		return
	}
	for prefix, fn := range b.actions {
		if strings.HasPrefix(a.ActionID, prefix) {
			err := fn(ctx, Click{ActionID: a.ActionID, Value: a.Value, User: user, Channel: channel,
				MessageTS: cb.Container.MessageTs, TriggerID: cb.TriggerID})
			if err != nil {
				b.ephemeral(ctx, channel, user, textMessage(b.showError(err, a.ActionID, "user", user)))
			}
			return
		}
	}
	log.Info("click on an element sdbmaint does not handle")
}

// decide hands a decision to the engine and tells the person if it was
// refused. An accepted decision shows on the card through engine events.
func (b *Bot) decide(ctx context.Context, d runbook.Decision, channel string) {
	log := b.log.With("run", d.RunID, "phase", string(d.Phase), "user", d.By, "action", string(d.Action))
	o, err := b.engine.Decide(ctx, d)
	if err != nil {
		b.ephemeral(ctx, channel, d.By, textMessage(b.showError(err, string(d.Action), "run", d.RunID, "user", d.By)))
		return
	}
	if !o.Accepted {
		log.Info("decision refused", "reason", o.Reason)
		b.ephemeral(ctx, channel, d.By, textMessage(RefusalText(o)))
		return
	}
	log.Info("decision accepted")
	if o.Run != nil {
		b.board.update(o.Run, true)
	}
}

// submitReason handles the skip-reason modal.
func (b *Bot) submitReason(cb slack.InteractionCallback) ack {
	meta, err := decodeReasonMeta(cb.View.PrivateMetadata)
	if err != nil {
		b.log.Warn("reason dialog with metadata the bot did not write", "err", err)
		return ack{body: slack.NewErrorsViewSubmissionResponse(map[string]string{reasonBlockID: "This dialog is damaged; close it and click the button again."})}
	}
	var reason string
	if cb.View.State != nil {
		reason = strings.TrimSpace(cb.View.State.Values[reasonBlockID][reasonActionID].Value)
	}
	if reason == "" {
		return ack{body: slack.NewErrorsViewSubmissionResponse(map[string]string{reasonBlockID: "Say why; the reason is recorded."})}
	}
	if b.closing.Load() {
		return ack{body: slack.NewErrorsViewSubmissionResponse(map[string]string{reasonBlockID: "sdbmaint is restarting; submit again in a minute."})}
	}
	d := runbook.Decision{RunID: meta.Value.RunID, Phase: meta.Value.Phase, Version: meta.Value.Version,
		Action: meta.Action, By: cb.User.ID, Reason: truncate(reason, 500)}
	return ack{work: func(ctx context.Context) { b.decide(ctx, d, meta.Channel) }}
}
