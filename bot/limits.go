package bot

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Slack's limits (reference/slack-platform.md). Messages that break them are
// rejected with invalid_blocks or msg_too_long and the bot would go silent,
// so every text is cut to fit before it is sent, keeping what matters.
const (
	maxBlocks       = 50   // blocks per message
	maxSectionText  = 3000 // characters in a section's text
	maxHeaderText   = 150  // characters in a header block
	maxButtonText   = 75   // characters on a button
	maxButtonValue  = 2000 // characters in a button value
	maxActionID     = 255  // characters in an action_id or block_id
	maxConfirmText  = 300  // characters in a confirm dialog's text
	maxContextText  = 3000 // characters in one context element
	maxMessageText  = 3000 // the fallback text; Slack allows 40,000 but stays safe here
	maxModalTitle   = 24   // characters in a modal title
	maxInlineOutput = 2800 // step output shown inline in the thread before it goes to a file
)

// escapeMrkdwn escapes the three characters Slack treats as control
// characters in mrkdwn, so that text from a cluster or a person is shown as
// typed and can never form a mention or a link.
func escapeMrkdwn(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n characters (runes), ending with "…" when cut.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// tail keeps the end of s within n characters, starting at a line boundary
// where possible, and says how much was left out.
func tail(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	const note = "…(earlier lines in the file)\n"
	keep := r[len(r)-(n-utf8.RuneCountInString(note)):]
	t := string(keep)
	if i := strings.IndexByte(t, '\n'); i >= 0 && i < len(t)-1 {
		t = t[i+1:]
	}
	return note + t
}

// joinLimited joins lines with newlines in at most n characters. Lines that
// do not fit are counted in a final "more" line; the first lines are kept, so
// callers put the important lines first.
func joinLimited(lines []string, n int, more func(int) string) string {
	var b strings.Builder
	used := 0
	for i, l := range lines {
		sep := 0
		if i > 0 {
			sep = 1
		}
		reserve := 0 // room for the "more" line if anything follows this one
		if i < len(lines)-1 {
			reserve = 1 + utf8.RuneCountInString(more(len(lines)-i-1))
		}
		size := utf8.RuneCountInString(l)
		if used+sep+size+reserve > n {
			if i == 0 {
				// Show at least the start of the most important line.
				l = truncate(l, n-reserve)
				size = utf8.RuneCountInString(l)
			} else {
				rest := more(len(lines) - i)
				b.WriteByte('\n')
				b.WriteString(rest)
				return b.String()
			}
		}
		if sep == 1 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
		used += sep + size
	}
	return b.String()
}

func moreLines(what string) func(int) string {
	return func(n int) string { return "_…and " + strconv.Itoa(n) + " more " + what + "_" }
}
