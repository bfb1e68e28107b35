package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/verify"
)

// This file is the Slack side of /sdbmaint verify: the verb, its parser,
// the approver check, and the messages. Package verify does the checking;
// cmd/sdbmaint turns the config into the PackageVerifier that calls it. The
// message builders at the end are pure and golden-tested in verify_test.go.
//
// The answer goes to the channel, not only to the person who asked: whether
// a package is authentic is evidence the whole team acts on before it is
// installed in a maintenance window, and a channel message stays where the
// others look. It goes through the command's response_url, which works in
// any channel the command can be typed in; that URL is good for 30 minutes,
// so a verification is bounded well inside that (VerifyTimeout).

// VerbVerify is /sdbmaint verify.
const VerbVerify = "verify"

// MaxVerifyPaths bounds the files one /sdbmaint verify checks: each is
// hashed on the toolbox host, and the answer has to fit one message.
const MaxVerifyPaths = 10

// VerifyTimeout bounds one /sdbmaint verify, hashing included. Files not
// checked by then are reported as could-not-check; the reply still arrives
// while its response_url is valid.
const VerifyTimeout = 20 * time.Minute

// verifyExample is the example every verify usage error ends with.
const verifyExample = "`/sdbmaint verify prod /opt/pkgs/singlestoredb-server-8.9.3.tar.gz`"

// VerifyVerb describes /sdbmaint verify to the parser. The cluster is
// matched by ParseVerify itself, so that every mistake is answered with an
// example.
func VerifyVerb() Verb {
	return Verb{Name: VerbVerify, Args: "CLUSTER PATH...", Cluster: NoCluster, MinArgs: 0, MaxArgs: -1,
		Summary: "check the Sigstore signatures of SingleStore packages on the cluster's toolbox host before they are installed (approvers only)"}
}

// PackageVerifier checks package files on a cluster's toolbox host and
// returns one result per path, in the order given. cmd/sdbmaint builds it
// from the config: the cluster's verify policy, its toolbox host, and the
// bundle the cluster's packages list names for a path (else PATH.sig). An
// error means nothing could be checked (a missing trusted root, say); its
// runbook error kind decides how it is shown.
type PackageVerifier func(ctx context.Context, cluster string, paths []string) ([]verify.Result, error)

// AddVerify adds /sdbmaint verify CLUSTER PATH... to the bot, checking
// packages with v. Only approvers may use it. Call it before Serve.
func (b *Bot) AddVerify(v PackageVerifier) error {
	if v == nil {
		return errors.New("bot: AddVerify needs a PackageVerifier")
	}
	return b.AddVerb(VerifyVerb(), func(ctx context.Context, inv Invocation) (Reply, error) {
		return b.verify(ctx, inv, v)
	})
}

// verify carries out /sdbmaint verify. It runs after the acknowledgement,
// on the bot's drainer, so SIGTERM lets it finish.
func (b *Bot) verify(ctx context.Context, inv Invocation, v PackageVerifier) (Reply, error) {
	args, reply := ParseVerify(inv.Command.Args, b.opts.Clusters.Names())
	if reply != "" {
		return Reply{Message: textMessage(reply)}, nil
	}
	log := b.log.With("verb", VerbVerify, "cluster", args.Cluster, "user", inv.User)
	ok, err := b.MayApprove(ctx, args.Cluster, inv.User)
	if err != nil {
		return Reply{}, fmt.Errorf("check whether %s may verify packages of %s: %w", inv.User, args.Cluster, err)
	}
	if !ok {
		log.Info("package verification refused: not an approver")
		return Reply{Message: textMessage(verifyRefusal(args.Cluster))}, nil
	}
	// Hashing a large package on the toolbox host takes a while: say at
	// once that it started, so nobody types the command again.
	b.ephemeral(ctx, inv.Channel, inv.User, VerifyingMessage(args))
	ctx, cancel := context.WithTimeout(ctx, VerifyTimeout)
	defer cancel()
	start := b.clock.Now()
	results, err := v(ctx, args.Cluster, args.Paths)
	if err != nil {
		return Reply{}, err
	}
	took := b.clock.Now().Sub(start)
	log.Info("packages verified", "files", len(results), "verdict", verifySummaryText(results), "took", took)
	return Reply{Message: VerifyMessage(args.Cluster, inv.User, results, start, took), InChannel: true}, nil
}

// VerifyArgs is /sdbmaint verify's arguments.
type VerifyArgs struct {
	Cluster string
	Paths   []string // absolute paths on the toolbox host, without repeats
}

// ParseVerify reads the words after /sdbmaint verify: the cluster, then one
// or more absolute paths of package files on its toolbox host. It returns
// the arguments, or a reply saying what was wrong with an example. Options
// are refused: --bundle has no place in Slack, where a file's bundle is the
// one the config lists for it, or PATH.sig.
func ParseVerify(words []string, clusters []string) (VerifyArgs, string) {
	if len(words) == 0 {
		return VerifyArgs{}, "Which cluster, and which package files? " + verifyUsage()
	}
	cluster, reply := matchCluster(words[0], clusters)
	if reply != "" {
		return VerifyArgs{}, reply + "\n" + verifyUsage()
	}
	args := VerifyArgs{Cluster: cluster}
	seen := map[string]bool{}
	for _, w := range words[1:] {
		switch {
		case w == "--bundle" || w == "-bundle" || strings.HasPrefix(w, "--bundle=") || strings.HasPrefix(w, "-bundle="):
			return VerifyArgs{}, "`--bundle` is not available in Slack: each file is checked against the bundle listed for it under the cluster's `packages:` in the config, or else PATH.sig beside it. " +
				"For another bundle, list the file under `packages:`, or run `sdbmaint verify --bundle BUNDLE PATH` on the bot's host.\n" + verifyUsage()
		case strings.HasPrefix(w, "-"):
			return VerifyArgs{}, fmt.Sprintf("`%s` is not something verify takes in Slack: only the cluster and the paths of the files.\n%s", echo(w, 40), verifyUsage())
		case strings.IndexFunc(w, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return VerifyArgs{}, fmt.Sprintf("`%s` contains control characters; a package path cannot.\n%s", echo(strings.Map(visible, w), 80), verifyUsage())
		case !strings.HasPrefix(w, "/"):
			return VerifyArgs{}, fmt.Sprintf("`%s` is not an absolute path: give the file's full path on the toolbox host of `%s`, starting with `/`.\n%s",
				echo(w, 80), escapeMrkdwn(cluster), verifyUsage())
		case seen[w]:
			continue
		}
		seen[w] = true
		args.Paths = append(args.Paths, w)
	}
	switch {
	case len(args.Paths) == 0:
		return VerifyArgs{}, fmt.Sprintf("Name at least one package file on the toolbox host of `%s`. %s", escapeMrkdwn(cluster), verifyUsage())
	case len(args.Paths) > MaxVerifyPaths:
		return VerifyArgs{}, fmt.Sprintf("At most %d files per command; you named %d. Verify them in a few commands. %s",
			MaxVerifyPaths, len(args.Paths), verifyUsage())
	}
	return args, ""
}

// visible replaces control characters so that a path can be quoted back.
func visible(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return '�'
	}
	return r
}

func verifyUsage() string {
	return "Usage: `/sdbmaint verify CLUSTER PATH...`, for example " + verifyExample +
		". Each file is checked against the bundle the cluster's `packages:` config lists for it, or PATH.sig."
}

func verifyRefusal(cluster string) string {
	return fmt.Sprintf("Only approvers may verify packages of `%s` from Slack, and you are not one (`slack.approvers` in the sdbmaint config). "+
		"Ask an approver, or run `sdbmaint verify --config FILE --cluster %s PATH` where the config is.", escapeMrkdwn(cluster), codeSafe(cluster))
}

// VerifyingMessage tells the person who asked that the check started.
func VerifyingMessage(a VerifyArgs) Message {
	what := fmt.Sprintf("`%s`", codeSafe(clip(a.Paths[0], 200)))
	if len(a.Paths) > 1 {
		what = fmt.Sprintf("%d files", len(a.Paths))
	}
	return textMessage(fmt.Sprintf("🔏 Verifying %s on the toolbox host of `%s`: each file is hashed there, which takes a while for a large package. "+
		"The answer will be posted in this channel.", what, escapeMrkdwn(a.Cluster)))
}

var verdictEmoji = map[verify.Verdict]string{verify.Verified: "✅", verify.NotVerified: "❌", verify.CouldNotCheck: "⚠️"}

// verdictCounts returns how many results are verified, not verified, and
// could not be checked.
func verdictCounts(results []verify.Result) (ok, bad, unknown int) {
	for _, r := range results {
		switch r.Verdict {
		case verify.Verified:
			ok++
		case verify.NotVerified:
			bad++
		default:
			unknown++
		}
	}
	return ok, bad, unknown
}

// verifySummaryText is the verdict in one line: "2 of 2 verified",
// "1 NOT verified, 1 could not be checked, 1 verified".
func verifySummaryText(results []verify.Result) string {
	ok, bad, unknown := verdictCounts(results)
	if bad == 0 && unknown == 0 {
		return fmt.Sprintf("%d of %d verified", ok, len(results))
	}
	var parts []string
	if bad > 0 {
		parts = append(parts, fmt.Sprintf("%d NOT verified", bad))
	}
	if unknown > 0 {
		parts = append(parts, fmt.Sprintf("%d could not be checked", unknown))
	}
	if ok > 0 {
		parts = append(parts, fmt.Sprintf("%d verified", ok))
	}
	return strings.Join(parts, ", ")
}

// VerifyMessage is the answer to /sdbmaint verify, for the channel: a
// verdict per file with its evidence (signer, issuer, transparency-log
// index, time of signing, digest) or the check that failed, in the order
// the files were named.
func VerifyMessage(cluster, by string, results []verify.Result, at time.Time, took time.Duration) Message {
	ok, bad, unknown := verdictCounts(results)
	var summary string
	switch {
	case bad > 0:
		summary = fmt.Sprintf("*❌ %s.* Do not install a file that is not verified: nothing proves that SingleStore signed it.", verifySummaryText(results))
	case unknown > 0:
		summary = fmt.Sprintf("*⚠️ %s.* Nothing is known yet about a file that could not be checked: fix what is named below and verify it again.", verifySummaryText(results))
	default:
		summary = fmt.Sprintf("*✅ %s:* signed by the expected identity and issuer, and recorded in the transparency log.", verifySummaryText(results))
	}
	blocks := []slack.Block{
		header("verify-head", "Package signatures · "+cluster),
		contextLine("verify-ctx", fmt.Sprintf("Checked by %s · %s · took %s · hashed on the toolbox host, verified offline against the pinned Sigstore trusted root",
			who(by), slackDateTime(at), fmtDuration(took))),
		section("verify-summary", summary),
	}
	for i, r := range results {
		if len(blocks) >= maxBlocks-1 { // MaxVerifyPaths keeps far from this; stay safe anyway
			blocks = append(blocks, contextLine("verify-more", fmt.Sprintf("…and %d more files", len(results)-i)))
			break
		}
		blocks = append(blocks, section(fmt.Sprintf("verify-%d", i), verifyResultText(r)))
	}
	text := fmt.Sprintf("Package signatures on %s: %s", escapeMrkdwn(cluster), verifySummaryText(results))
	if ok == 1 && len(results) == 1 {
		text = fmt.Sprintf("Package signature on %s: %s verified", escapeMrkdwn(cluster), codeSafe(clip(results[0].Path, 200)))
	}
	return Message{Text: truncate(text, maxMessageText), Blocks: blocks}
}

// verifyResultText is one file's verdict and its evidence.
func verifyResultText(r verify.Result) string {
	emoji := verdictEmoji[r.Verdict]
	if emoji == "" {
		emoji = "⚠️"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s `%s` — ", emoji, codeSafe(clip(r.Path, 300)))
	switch r.Verdict {
	case verify.Verified:
		b.WriteString("*verified*\n")
		fmt.Fprintf(&b, "Signer: `%s`\nIssuer: `%s`\n", codeSafe(clip(r.Identity, 400)), codeSafe(clip(r.Issuer, 400)))
		fmt.Fprintf(&b, "Transparency log index `%d` · signed %s\n", r.LogIndex, signingTime(r.SignedAt))
	case verify.NotVerified:
		fmt.Fprintf(&b, "*NOT verified: %s*\n%s\n", escapeMrkdwn(string(r.Check)), escapeMrkdwn(clip(r.Message, 800)))
	default:
		fmt.Fprintf(&b, "*could not check: %s*\n%s\n", escapeMrkdwn(string(r.Check)), escapeMrkdwn(clip(r.Message, 800)))
	}
	if r.Digest != "" {
		fmt.Fprintf(&b, "SHA-256 `%s` · ", codeSafe(r.Digest))
	}
	fmt.Fprintf(&b, "bundle `%s`", codeSafe(clip(r.Bundle, 300)))
	return b.String()
}

// signingTime shows the time of signing in each reader's time zone, to the
// second, with UTC as the fallback.
func signingTime(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.UTC().Format(time.RFC3339))
}
