// Command gopeer is the Go side of the goomerang interop tests.
//
// It runs a goomerang server or client of the real Go library, driven by
// JSON commands on stdin (one per line), and reports what happens as JSON
// events on stdout (one per line). It uses only the library's public API.
//
//	gopeer -mode server [-listen 127.0.0.1:0] [-tls-cert f -tls-key f]
//	gopeer -mode client -addr host:port [-tls-ca f] [-heartbeat 5s]
//
// Handlers behave as the Python tests' peers do (see tests/interop/peers.py):
// a server handler for goomerang.example.MessageV1 answers a sync request
// with ReplyV1{"re:"+text} (BadReplyV1 when text starts with "bad:", nothing
// when it starts with "silent:") and headers {"reply": "yes"}; a plain
// message whose text starts with "echo:" is sent back as ReplyV1{"re:"+text}
// with the same headers.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"go.eloylp.dev/goomerang/client"
	"go.eloylp.dev/goomerang/example/protos"
	"go.eloylp.dev/goomerang/message"
	"go.eloylp.dev/goomerang/server"
)

// shortPayload is the longest payload text reported verbatim in events.
const shortPayload = 256

// maxErrors bounds the error events printed (a failed connection may repeat one error).
const maxErrors = 50

// Command is one line of stdin.
type Command struct {
	ID        int               `json:"id"`
	Op        string            `json:"op"`
	Kind      string            `json:"kind"`
	Payload   string            `json:"payload"`
	Repeat    int               `json:"repeat"`
	Headers   map[string]string `json:"headers"`
	Topic     string            `json:"topic"`
	TimeoutMS int               `json:"timeout_ms"`
}

// Event is one line of stdout; fields not set are left out.
type Event map[string]any

var (
	outMu      sync.Mutex
	errorCount int
)

func emit(ev Event) {
	data, err := json.Marshal(ev)
	if err != nil {
		data, _ = json.Marshal(Event{"event": "error", "text": "marshal: " + err.Error()})
	}
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(append(data, '\n'))
}

func emitError(err error) {
	outMu.Lock()
	errorCount++
	n := errorCount
	outMu.Unlock()
	if n <= maxErrors {
		emit(Event{"event": "error", "text": err.Error(), "count": n})
	}
}

func emitStatus(status uint32) {
	emit(Event{"event": "status", "value": status})
}

// text is the single string field of the example messages.
func text(p proto.Message) string {
	switch m := p.(type) {
	case *protos.MessageV1:
		return m.Message
	case *protos.ReplyV1:
		return m.Message
	case *protos.BadReplyV1:
		return m.Message
	}
	return ""
}

func payloadFields(ev Event, s string) Event {
	sum := sha256.Sum256([]byte(s))
	ev["payload_len"] = len(s)
	ev["payload_sha256"] = hex.EncodeToString(sum[:])
	if len(s) <= shortPayload {
		ev["payload"] = s
	}
	return ev
}

func messageEvent(event string, msg *message.Message) Event {
	headers := map[string]string{}
	for k, v := range msg.Header {
		headers[k] = v
	}
	ev := Event{
		"event":   event,
		"kind":    msg.Metadata.Kind,
		"headers": headers,
		"uuid":    msg.Metadata.UUID,
		"is_sync": msg.Metadata.IsSync,
	}
	return payloadFields(ev, text(msg.Payload))
}

func newPayload(kind, s string) (proto.Message, error) {
	switch kind {
	case "", "MessageV1", "goomerang.example.MessageV1":
		return &protos.MessageV1{Message: s}, nil
	case "ReplyV1", "goomerang.example.ReplyV1":
		return &protos.ReplyV1{Message: s}, nil
	case "BadReplyV1", "goomerang.example.BadReplyV1":
		return &protos.BadReplyV1{Message: s}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func (c *Command) message() (*message.Message, error) {
	s := c.Payload
	if c.Repeat > 1 {
		s = strings.Repeat(s, c.Repeat)
	}
	p, err := newPayload(c.Kind, s)
	if err != nil {
		return nil, err
	}
	msg := message.New().SetPayload(p)
	for k, v := range c.Headers {
		msg.SetHeader(k, v)
	}
	return msg, nil
}

func (c *Command) timeout() time.Duration {
	if c.TimeoutMS <= 0 {
		return 5 * time.Second
	}
	return time.Duration(c.TimeoutMS) * time.Millisecond
}

func done(c *Command, err error, extra Event) {
	ev := Event{"event": "done", "id": c.ID, "op": c.Op, "error": ""}
	if err != nil {
		ev["error"] = err.Error()
	}
	for k, v := range extra {
		ev[k] = v
	}
	emit(ev)
}

// serverHandler is the scripted handler for MessageV1 on the server.
func serverHandler(sender message.Sender, msg *message.Message) {
	emit(messageEvent("received", msg))
	s := text(msg.Payload)
	if msg.Metadata.IsSync {
		if strings.HasPrefix(s, "silent:") {
			return
		}
		var reply proto.Message = &protos.ReplyV1{Message: "re:" + s}
		if strings.HasPrefix(s, "bad:") {
			reply = &protos.BadReplyV1{Message: "re:" + s}
		}
		if _, err := sender.Send(message.New().SetPayload(reply).SetHeader("reply", "yes")); err != nil {
			emitError(fmt.Errorf("reply: %w", err))
		}
		return
	}
	if strings.HasPrefix(s, "echo:") {
		echo := message.New().SetPayload(&protos.ReplyV1{Message: "re:" + s})
		for k, v := range msg.Header {
			echo.SetHeader(k, v)
		}
		if _, err := sender.Send(echo); err != nil {
			emitError(fmt.Errorf("echo: %w", err))
		}
	}
}

func readCommands(run func(c *Command)) {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 64<<20)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		c := &Command{}
		if err := json.Unmarshal([]byte(line), c); err != nil {
			emit(Event{"event": "error", "text": "bad command: " + err.Error()})
			continue
		}
		run(c)
	}
	emit(Event{"event": "stdin_closed"})
}

func runServer(listen, certFile, keyFile string, concurrency int) error {
	running := make(chan struct{})
	var once sync.Once
	opts := []server.Option{
		server.WithListenAddr(listen),
		server.WithMaxConcurrency(concurrency),
		server.WithOnErrorHook(emitError),
		server.WithOnStatusChangeHook(func(status uint32) {
			emitStatus(status)
			if status == 1 {
				once.Do(func() { close(running) })
			}
		}),
		server.WithOnSubscribeHook(func(topic string) { emit(Event{"event": "subscribed", "topic": topic}) }),
		server.WithOnUnsubscribeHook(func(topic string) { emit(Event{"event": "unsubscribed", "topic": topic}) }),
		server.WithOnPublishHook(func(topic, kind string) {
			emit(Event{"event": "published", "topic": topic, "kind": kind})
		}),
		server.WithOnClientBroadcastHook(func(kind string) { emit(Event{"event": "client_broadcast", "kind": kind}) }),
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		opts = append(opts, server.WithTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	}
	srv, err := server.New(opts...)
	if err != nil {
		return err
	}
	srv.Handle(&protos.MessageV1{}, message.HandlerFunc(serverHandler))
	srv.RegisterMessage(&protos.ReplyV1{})
	srv.RegisterMessage(&protos.BadReplyV1{})
	runErr := make(chan error, 1)
	go func() {
		err := srv.Run()
		emit(Event{"event": "run_returned", "error": errText(err)})
		runErr <- err
	}()
	select {
	case <-running:
	case err := <-runErr:
		return err
	}
	emit(Event{"event": "ready", "addr": srv.Addr()})
	readCommands(func(c *Command) {
		switch c.Op {
		case "broadcast":
			msg, err := c.message()
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
				var results []server.BroadcastResult
				results, err = srv.Broadcast(ctx, msg)
				cancel()
				done(c, err, Event{"count": len(results)})
				return
			}
			done(c, err, nil)
		case "publish":
			msg, err := c.message()
			if err == nil {
				err = srv.Publish(c.Topic, msg)
			}
			done(c, err, nil)
		case "shutdown":
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
				defer cancel()
				done(c, srv.Shutdown(ctx), nil)
			}()
		default:
			done(c, fmt.Errorf("unknown server op %q", c.Op), nil)
		}
	})
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// gate lets a test stop the client's handlers (and so its reading).
type gate struct {
	mu sync.Mutex
	ch chan struct{}
}

func (g *gate) wait() {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch != nil {
		emit(Event{"event": "blocked"})
		<-ch
	}
}

func (g *gate) block() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

func runClient(addr, caFile string, heartbeat time.Duration, concurrency int) error {
	opts := []client.Option{
		client.WithServerAddr(addr),
		client.WithMaxConcurrency(concurrency),
		client.WithHeartbeatInterval(heartbeat),
		client.WithOnErrorHook(emitError),
		client.WithOnStatusChangeHook(emitStatus),
		client.WithOnCloseHook(func() { emit(Event{"event": "closed"}) }),
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("no certificate in " + caFile)
		}
		opts = append(opts, client.WithTLSConfig(&tls.Config{RootCAs: pool}))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return err
	}
	g := &gate{}
	handler := message.HandlerFunc(func(_ message.Sender, msg *message.Message) {
		g.wait()
		emit(messageEvent("received", msg))
	})
	cli.Handle(&protos.MessageV1{}, handler)
	cli.Handle(&protos.ReplyV1{}, handler)
	cli.Handle(&protos.BadReplyV1{}, handler)
	emit(Event{"event": "ready"})
	readCommands(func(c *Command) {
		switch c.Op {
		case "connect":
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
			err := cli.Connect(ctx)
			cancel()
			done(c, err, nil)
		case "close":
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
				defer cancel()
				done(c, cli.Close(ctx), nil)
			}()
		case "send", "broadcast", "publish", "send_sync":
			msg, err := c.message()
			if err != nil {
				done(c, err, nil)
				return
			}
			switch c.Op {
			case "send":
				_, err = cli.Send(msg)
			case "broadcast":
				_, err = cli.Broadcast(msg)
			case "publish":
				_, err = cli.Publish(c.Topic, msg)
			case "send_sync":
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
					defer cancel()
					_, reply, err := cli.SendSync(ctx, msg)
					ev := Event{}
					if reply != nil {
						ev = messageEvent("reply", reply)
						delete(ev, "event")
					}
					done(c, err, Event{"reply": ev})
				}()
				return
			}
			done(c, err, nil)
		case "subscribe":
			done(c, cli.Subscribe(c.Topic), nil)
		case "unsubscribe":
			done(c, cli.Unsubscribe(c.Topic), nil)
		case "block":
			g.block()
			done(c, nil, nil)
		case "release":
			g.release()
			done(c, nil, nil)
		default:
			done(c, fmt.Errorf("unknown client op %q", c.Op), nil)
		}
	})
	return nil
}

func main() {
	mode := flag.String("mode", "", "server or client")
	listen := flag.String("listen", "127.0.0.1:0", "server: listen address")
	addr := flag.String("addr", "", "client: server address host:port")
	certFile := flag.String("tls-cert", "", "server: TLS certificate (PEM)")
	keyFile := flag.String("tls-key", "", "server: TLS key (PEM)")
	caFile := flag.String("tls-ca", "", "client: CA certificate to trust (PEM); enables TLS")
	heartbeat := flag.Duration("heartbeat", 5*time.Second, "client: ping interval")
	concurrency := flag.Int("concurrency", 10, "handler concurrency (<= 1: inline, in order)")
	flag.Parse()
	var err error
	switch *mode {
	case "server":
		err = runServer(*listen, *certFile, *keyFile, *concurrency)
	case "client":
		err = runClient(*addr, *caFile, *heartbeat, *concurrency)
	default:
		err = fmt.Errorf("-mode must be server or client, not %q", *mode)
	}
	if err != nil {
		emit(Event{"event": "fatal", "text": err.Error()})
		os.Exit(1)
	}
}
