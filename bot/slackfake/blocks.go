package slackfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Slack's documented limits (shared/reference/slack-platform.md).
const (
	MaxBlocks      = 50
	MaxSectionText = 3000
	MaxHeaderText  = 150
	MaxButtonText  = 75
	MaxButtonValue = 2000
	MaxActionID    = 255
	MaxBlockID     = 255
	MaxContextText = 3000
	MaxMessageText = 40000
	MaxConfirmText = 300
)

// CheckMessage reports every way a message breaks Slack's limits, as Slack
// would refuse it (invalid_blocks, msg_too_long).
func CheckMessage(text string, blocks []byte) error {
	var errs []error
	if n := utf8.RuneCountInString(text); n > MaxMessageText {
		errs = append(errs, fmt.Errorf("text is %d characters (max %d)", n, MaxMessageText))
	}
	if len(blocks) == 0 || string(blocks) == "null" {
		return errors.Join(errs...)
	}
	var bs []map[string]any
	if err := json.Unmarshal(blocks, &bs); err != nil {
		return fmt.Errorf("blocks are not a JSON array of objects: %w", err)
	}
	if len(bs) > MaxBlocks {
		errs = append(errs, fmt.Errorf("%d blocks (max %d)", len(bs), MaxBlocks))
	}
	ids := map[string]bool{}
	for i, b := range bs {
		where := fmt.Sprintf("block %d (%v)", i, b["type"])
		if id, _ := b["block_id"].(string); id != "" {
			if ids[id] {
				errs = append(errs, fmt.Errorf("%s: duplicate block_id %q", where, id))
			}
			ids[id] = true
			if len(id) > MaxBlockID {
				errs = append(errs, fmt.Errorf("%s: block_id is %d characters", where, len(id)))
			}
		}
		switch b["type"] {
		case "section":
			if n := textLen(b["text"]); n > MaxSectionText || n == 0 && b["fields"] == nil {
				errs = append(errs, fmt.Errorf("%s: text is %d characters (1..%d)", where, n, MaxSectionText))
			}
		case "header":
			if n := textLen(b["text"]); n > MaxHeaderText || n == 0 {
				errs = append(errs, fmt.Errorf("%s: text is %d characters (1..%d)", where, n, MaxHeaderText))
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				errs = append(errs, fmt.Errorf("%s: %d elements (1..10)", where, len(els)))
			}
			for _, e := range els {
				if n := textLen(e); n > MaxContextText {
					errs = append(errs, fmt.Errorf("%s: element text is %d characters", where, n))
				}
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 25 {
				errs = append(errs, fmt.Errorf("%s: %d elements (1..25)", where, len(els)))
			}
			actions := map[string]bool{}
			for _, e := range els {
				em, _ := e.(map[string]any)
				errs = append(errs, checkButton(where, em)...)
				if id, _ := em["action_id"].(string); id != "" {
					if actions[id] {
						errs = append(errs, fmt.Errorf("%s: duplicate action_id %q", where, id))
					}
					actions[id] = true
				}
			}
		case "divider", "input", "image", "rich_text":
		default:
			errs = append(errs, fmt.Errorf("%s: block type the bot should not need", where))
		}
		if acc, ok := b["accessory"].(map[string]any); ok {
			errs = append(errs, checkButton(where, acc)...)
		}
	}
	return errors.Join(errs...)
}

func checkButton(where string, e map[string]any) []error {
	if e["type"] != "button" {
		return nil
	}
	var errs []error
	if n := textLen(e["text"]); n == 0 || n > MaxButtonText {
		errs = append(errs, fmt.Errorf("%s: button text is %d characters (1..%d)", where, n, MaxButtonText))
	}
	if v, _ := e["value"].(string); len(v) > MaxButtonValue {
		errs = append(errs, fmt.Errorf("%s: button value is %d characters (max %d)", where, len(v), MaxButtonValue))
	}
	if id, _ := e["action_id"].(string); len(id) > MaxActionID {
		errs = append(errs, fmt.Errorf("%s: action_id is %d characters", where, len(id)))
	}
	if c, ok := e["confirm"].(map[string]any); ok {
		if n := textLen(c["title"]); n == 0 || n > 100 {
			errs = append(errs, fmt.Errorf("%s: confirm title is %d characters (1..100)", where, n))
		}
		if n := textLen(c["text"]); n == 0 || n > MaxConfirmText {
			errs = append(errs, fmt.Errorf("%s: confirm text is %d characters (1..%d)", where, n, MaxConfirmText))
		}
		for _, k := range []string{"confirm", "deny"} {
			if n := textLen(c[k]); n == 0 || n > 30 {
				errs = append(errs, fmt.Errorf("%s: confirm %s is %d characters (1..30)", where, k, n))
			}
		}
	}
	return errs
}

func textLen(v any) int {
	m, _ := v.(map[string]any)
	s, _ := m["text"].(string)
	return utf8.RuneCountInString(s)
}

// Button is a button as a message shows it.
type Button struct {
	ActionID, BlockID, Text, Value, Style string
	ConfirmTitle, ConfirmText             string // "" without a confirm dialog
}

// Buttons lists the buttons in blocks, in order.
func Buttons(blocks json.RawMessage) []Button {
	var bs []struct {
		Type     string            `json:"type"`
		BlockID  string            `json:"block_id"`
		Elements []json.RawMessage `json:"elements"`
	}
	_ = json.Unmarshal(blocks, &bs)
	var out []Button
	for _, b := range bs {
		if b.Type != "actions" {
			continue
		}
		for _, raw := range b.Elements {
			var e struct {
				Type     string `json:"type"`
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
				Style    string `json:"style"`
				Text     struct {
					Text string `json:"text"`
				} `json:"text"`
				Confirm *struct {
					Title struct{ Text string } `json:"title"`
					Text  struct{ Text string } `json:"text"`
				} `json:"confirm"`
			}
			if json.Unmarshal(raw, &e) != nil || e.Type != "button" {
				continue
			}
			btn := Button{ActionID: e.ActionID, BlockID: b.BlockID, Text: e.Text.Text, Value: e.Value, Style: e.Style}
			if e.Confirm != nil {
				btn.ConfirmTitle, btn.ConfirmText = e.Confirm.Title.Text, e.Confirm.Text.Text
			}
			out = append(out, btn)
		}
	}
	return out
}

// Texts joins every text in the blocks (sections, headers, context, button
// labels), one per line, for tests that look for words on a card.
func Texts(blocks json.RawMessage) string {
	var v any
	_ = json.Unmarshal(blocks, &v)
	var sb strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["text"].(string); ok {
				sb.WriteString(t)
				sb.WriteByte('\n')
			}
			for k, c := range x {
				if k != "text" || !isString(c) {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return sb.String()
}

func isString(v any) bool { _, ok := v.(string); return ok }

// AllText returns the message's text and the texts of its blocks.
func (m Message) AllText() string { return m.Text + "\n" + Texts(m.Blocks) }

// Buttons returns the message's buttons.
func (m Message) Buttons() []Button { return Buttons(m.Blocks) }
