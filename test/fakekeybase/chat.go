package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// parseChat handles `chat api`, `chat api-listen` and `chat notification-settings`.
func (p *proc) parseChat(paths statePaths, args []string, parse func(flagSpec, []string, int) (parsedFlags, error)) (runner, error) {
	if len(args) == 0 {
		return nil, errNotOK("Error parsing command line arguments: chat needs a subcommand")
	}
	switch args[0] {
	case "api":
		f, err := parse(flagSpec{bools: []string{"pretty,p"}, values: []string{"message,m", "infile,i", "outfile,o"}}, args[1:], 0)
		if err != nil {
			return nil, err
		}
		return func() error { return p.chatAPI(paths, f) }, nil
	case "api-listen":
		_, err := parse(flagSpec{
			bools:  []string{"wallet", "convs", "local", "hide-exploding", "dev", "subscribe-dev", "subscribe-dev-typing", "no-chat", "filter-channels"},
			values: []string{"filter-channel"},
		}, args[1:], 0)
		if err != nil {
			return nil, err
		}
		return func() error { return p.chatAPIListen(paths) }, nil
	case "notification-settings":
		f, err := parse(flagSpec{bools: []string{"disable-typing", "disable-typing-notifications"}}, args[1:], 0)
		if err != nil {
			return nil, err
		}
		return func() error {
			_, err := callOnce(paths.socket, request{Op: "notification-settings", Settings: map[string]bool{
				"disable-typing": f.bool("disable-typing") || f.bool("disable-typing-notifications"),
			}})
			return err
		}, nil
	default:
		return nil, errNotOK("Error parsing command line arguments: chat %q is not implemented by fakekeybase", args[0])
	}
}

// apiCall is one request of the chat JSON API (go/client/chat_api_handler.go Call). encoding/json
// matches keys case-insensitively, as the real decoder does.
type apiCall struct {
	Jsonrpc string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  struct {
		Version int             `json:"version"`
		Options json.RawMessage `json:"options"`
	} `json:"params"`
}

// apiError is CallError.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// apiReply is Reply: exactly one of Error and Result.
type apiReply struct {
	Jsonrpc string    `json:"jsonrpc,omitempty"`
	ID      int       `json:"id,omitempty"`
	Error   *apiError `json:"error,omitempty"`
	Result  any       `json:"result,omitempty"`
}

// chatAPI is `chat api`: it decodes a stream of calls (stdin, -i FILE or -m JSON) and writes one
// JSON line per call. It needs the service at start and holds one connection to it.
func (p *proc) chatAPI(paths statePaths, f parsedFlags) error {
	var in io.Reader = p.stdin
	switch {
	case f.value("message") != "":
		in = strings.NewReader(f.value("message"))
	case f.value("infile") != "":
		file, err := os.Open(f.value("infile"))
		if err != nil {
			return errNotOK("%v", err)
		}
		defer file.Close()
		in = file
	}
	out := p.stdout
	if name := f.value("outfile"); name != "" {
		file, err := os.Create(name)
		if err != nil {
			return errNotOK("%v", err)
		}
		defer file.Close()
		out = file
	}
	c, err := dialService(paths.socket)
	if err != nil {
		return err
	}
	defer c.close()

	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	if f.bool("pretty") {
		enc.SetIndent("", "    ")
	}
	dec := json.NewDecoder(in)
	for {
		var call apiCall
		if err := dec.Decode(&call); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errNotOK("invalid JSON: expected more JSON in input")
			}
			return errNotOK("invalid JSON: %v", err)
		}
		reply := p.chatCall(c, call)
		reply.Jsonrpc, reply.ID = call.Jsonrpc, call.ID
		if err := enc.Encode(reply); err != nil {
			return errNotOK("write reply: %v", err)
		}
		if err := w.Flush(); err != nil {
			return errNotOK("write reply: %v", err)
		}
	}
}

// chatOptions covers the options of the methods the fake implements.
type chatOptions struct {
	Channel        chatChannel `json:"channel"`
	ConversationID string      `json:"conversation_id"`
	Message        struct {
		Body string `json:"body"`
	} `json:"message"`
	UnreadOnly bool `json:"unread_only"`
}

// chatCall executes one API call against the service.
func (p *proc) chatCall(c *client, call apiCall) apiReply {
	fail := func(format string, args ...any) apiReply {
		return apiReply{Error: &apiError{Code: 0, Message: fmt.Sprintf(format, args...)}}
	}
	if call.Params.Version > 1 {
		return fail("invalid version %d", call.Params.Version)
	}
	var opts chatOptions
	if len(call.Params.Options) > 0 {
		if err := json.Unmarshal(call.Params.Options, &opts); err != nil {
			return fail("invalid %s v1 options: %v", call.Method, err)
		}
	}
	method := strings.ToLower(call.Method)
	switch method {
	case "send":
		if opts.Channel.Name == "" && opts.ConversationID == "" {
			return fail("invalid send v1 options: need channel or conversation_id")
		}
		if opts.Message.Body == "" {
			return fail("invalid send v1 options: invalid message")
		}
		ch := opts.Channel
		resp, err := c.call(request{Op: "chat-send", Channel: &ch, Body: opts.Message.Body})
		if err != nil {
			return fail("%v", err)
		}
		return apiReply{Result: map[string]any{"message": "message sent", "id": resp.MsgID}}
	case "list":
		resp, err := c.call(request{Op: "chat-read"})
		if err != nil {
			return fail("%v", err)
		}
		return apiReply{Result: map[string]any{"conversations": conversations(resp.Messages), "offline": false}}
	case "read":
		if opts.Channel.Name == "" && opts.ConversationID == "" {
			return fail("invalid read v1 options: need channel or conversation_id")
		}
		ch := opts.Channel
		resp, err := c.call(request{Op: "chat-read", Channel: &ch})
		if err != nil {
			return fail("%v", err)
		}
		return apiReply{Result: map[string]any{"messages": readMessages(resp.Messages), "pagination": map[string]any{"num": len(resp.Messages), "last": true}}}
	case "join", "leave", "mark":
		return apiReply{Result: map[string]any{}}
	default:
		return fail("invalid v1 method %q", call.Method)
	}
}

// convID is a stable conversation id for a channel.
func convID(ch chatChannel) string {
	topic := ch.TopicName
	if topic == "" && ch.MembersType == "team" {
		topic = "general"
	}
	sum := sha256.Sum256([]byte(strings.ToLower(ch.Name + "#" + topic)))
	return hex.EncodeToString(sum[:])
}

// conversations summarises the channels that have messages, as chat1.ConvSummary objects.
func conversations(msgs []sentMessage) []map[string]any {
	seen := map[string]bool{}
	var out []map[string]any
	for i := len(msgs) - 1; i >= 0; i-- {
		id := convID(msgs[i].Channel)
		if seen[id] {
			continue
		}
		seen[id] = true
		ts, _ := time.Parse(time.RFC3339Nano, msgs[i].TS)
		out = append(out, map[string]any{
			"id":            id,
			"channel":       msgs[i].Channel,
			"unread":        false,
			"active_at":     ts.Unix(),
			"active_at_ms":  ts.UnixMilli(),
			"member_status": "active",
		})
	}
	return out
}

// readMessages renders messages as chat1.Message objects with text content, newest first.
func readMessages(msgs []sentMessage) []map[string]any {
	var out []map[string]any
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		ts, _ := time.Parse(time.RFC3339Nano, m.TS)
		out = append(out, map[string]any{"msg": map[string]any{
			"id":              m.ID,
			"conversation_id": convID(m.Channel),
			"channel":         m.Channel,
			"sender":          map[string]any{"uid": fakeUID(m.Sender), "username": m.Sender, "device_name": "fakekeybase oneshot"},
			"sent_at":         ts.Unix(),
			"sent_at_ms":      ts.UnixMilli(),
			"content":         map[string]any{"type": "text", "text": map[string]any{"body": m.Body}},
		}})
	}
	return out
}

// chatAPIListen is `chat api-listen`: it prints nothing (no one sends the bot messages here) and
// runs until signalled or until the service goes away.
func (p *proc) chatAPIListen(paths statePaths) error {
	c, err := dialService(paths.socket)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := c.call(request{Op: "status"}); err != nil {
		return err
	}
	var discard json.RawMessage
	_ = c.dec.Decode(&discard) // returns when the service closes the connection
	return errNotOK("%s", notRunningMsg)
}
