package simulator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// How the stations are served over OPC UA.
//
// One gopcua server (the core) listens on an internal loopback port and
// holds the tags of all stations. Each station has its own endpoint: a
// listener of ours on the station's port that relays every connection to
// the core. This gives each station a port of its own that can be
// ephemeral and is known before the core starts, lets a station be
// restarted (its connections dropped, its port reopened) without touching
// the others, and lets Stop close every client connection, which the gopcua
// server's Close does not do. The core's Read, Write and Browse handlers are
// replaced by ours: they serve a connection only its own station's tags,
// read a whole request under one lock (so a result block is never torn),
// and do not crash on requests that crash gopcua's.

const (
	// helloTimeout bounds the wait for a client's OPC UA Hello message.
	helloTimeout = 10 * time.Second
	// helloMax bounds the size of a Hello message.
	helloMax = 64 << 10
	// dialTimeout bounds the connection from an endpoint to the core.
	dialTimeout = 5 * time.Second
	// coreStartAttempts is how often a core start is tried on a new port.
	coreStartAttempts = 5
)

// core is the gopcua server behind the station endpoints.
type core struct {
	srv    *server.Server
	addr   string // internal host:port
	cancel context.CancelFunc
}

// startCore starts the gopcua server that serves space. publicURLs are the
// station endpoint URLs it advertises besides its own internal one.
func startCore(ctx context.Context, space *tagSpace, public []hostPort, log *slog.Logger) (*core, error) {
	var lastErr error
	for attempt := 0; attempt < coreStartAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("opc ua core: %w", err)
		}
		opts := []server.Option{
			server.EndPoint("127.0.0.1", port),
			server.EnableSecurity("None", ua.MessageSecurityModeNone),
			server.EnableAuthMode(ua.UserTokenTypeAnonymous),
			server.ServerName("keiline simulator"),
			server.ManufacturerName("keiline"),
			server.ProductName("keiline PLC simulator"),
			server.SetLogger(gopcuaLogger{log}),
		}
		for _, hp := range public {
			opts = append(opts, server.EndPoint(hp.urlHost(), hp.port))
		}
		srv := server.New(opts...)
		srv.AddNamespace(space)
		h := &handlers{srv: srv, space: space}
		srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, h.read)
		srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, h.write)
		srv.RegisterHandler(id.BrowseRequest_Encoding_DefaultBinary, h.browse)

		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		if err := srv.Start(sctx); err != nil {
			cancel()
			lastErr = err
			if errors.Is(err, syscall.EADDRINUSE) {
				continue // the free port was taken meanwhile
			}
			return nil, fmt.Errorf("opc ua core: start on port %d: %w", port, err)
		}
		return &core{srv: srv, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cancel: cancel}, nil
	}
	return nil, fmt.Errorf("opc ua core: no free port after %d attempts: %w", coreStartAttempts, lastErr)
}

// close stops the core. Close the endpoints first: the gopcua server does
// not close client connections itself, and its connection goroutines only
// end when their connection does.
func (c *core) close() {
	_ = c.srv.Close() // waits for the connection goroutines
	c.cancel()        // ends the request loop
	// Subscriptions a client left behind each have a goroutine that would
	// otherwise run until the subscription's lifetime runs out.
	if ss := c.srv.SubscriptionService; ss != nil {
		ss.Mu.Lock()
		ids := make([]uint32, 0, len(ss.Subs))
		for id := range ss.Subs {
			ids = append(ids, id)
		}
		ss.Mu.Unlock()
		for _, id := range ids {
			ss.DeleteSubscription(id)
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// hostPort is a station endpoint address.
type hostPort struct {
	host string
	port int
}

// urlHost is the host as written in a URL (IPv6 in brackets).
func (hp hostPort) urlHost() string {
	if ip := net.ParseIP(hp.host); ip != nil && ip.To4() == nil {
		return "[" + hp.host + "]"
	}
	return hp.host
}

func (hp hostPort) url() string {
	return fmt.Sprintf("opc.tcp://%s:%d", hp.urlHost(), hp.port)
}

func (hp hostPort) addr() string {
	return net.JoinHostPort(hp.host, strconv.Itoa(hp.port))
}

// handlers replace gopcua's Read, Write and Browse services.
type handlers struct {
	srv   *server.Server
	space *tagSpace
}

// station returns the station of the connection a request came on, or
// noStation.
func (h *handlers) station(sc *uasc.SecureChannel) int {
	return h.space.connStation(sc.RemoteAddr().String())
}

func responseHeader(req *ua.RequestHeader, now time.Time) *ua.ResponseHeader {
	var handle uint32
	if req != nil {
		handle = req.RequestHandle
	}
	return &ua.ResponseHeader{
		Timestamp:          now,
		RequestHandle:      handle,
		ServiceResult:      ua.StatusOK,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

// read serves a Read request. Station tags are read under one lock, so a
// request sees one consistent state of the station.
func (h *handlers) read(sc *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	now := time.Now()
	st := h.station(sc)
	results := make([]*ua.DataValue, len(req.NodesToRead))
	h.space.mu.RLock()
	for i, rv := range req.NodesToRead {
		switch {
		case rv == nil || rv.NodeID == nil:
			results[i] = badValue(ua.StatusBadNodeIDInvalid, now)
		case rv.NodeID.Namespace() == h.space.ns:
			results[i] = h.space.attribute(rv.NodeID, rv.AttributeID, st, now)
		case rv.NodeID.Namespace() == 0:
			ns, err := h.srv.Namespace(0)
			if err != nil {
				results[i] = badValue(ua.StatusBadNodeIDUnknown, now)
				continue
			}
			dv := *ns.Attribute(rv.NodeID, rv.AttributeID) // a copy: gopcua may hand out its stored value
			results[i] = &dv
		default:
			results[i] = badValue(ua.StatusBadNodeIDUnknown, now)
		}
		filterTimestamps(results[i], req.TimestampsToReturn)
	}
	h.space.mu.RUnlock()
	return &ua.ReadResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, now),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// filterTimestamps drops the timestamps the client did not ask for.
func filterTimestamps(dv *ua.DataValue, ttr ua.TimestampsToReturn) {
	mask := dv.EncodingMask
	switch ttr {
	case ua.TimestampsToReturnSource:
		mask &^= ua.DataValueServerTimestamp | ua.DataValueServerPicoseconds
	case ua.TimestampsToReturnServer:
		mask &^= ua.DataValueSourceTimestamp | ua.DataValueSourcePicoseconds
	case ua.TimestampsToReturnNeither:
		mask &^= ua.DataValueServerTimestamp | ua.DataValueServerPicoseconds |
			ua.DataValueSourceTimestamp | ua.DataValueSourcePicoseconds
	}
	dv.EncodingMask = mask
}

// write serves a Write request: only a station's AckCounter is writable.
func (h *handlers) write(sc *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	now := time.Now()
	st := h.station(sc)
	results := make([]ua.StatusCode, len(req.NodesToWrite))
	for i, wv := range req.NodesToWrite {
		switch {
		case wv == nil || wv.NodeID == nil:
			results[i] = ua.StatusBadNodeIDInvalid
		case wv.NodeID.Namespace() == h.space.ns:
			results[i] = h.space.write(wv, st, now)
		case wv.NodeID.Namespace() == 0:
			results[i] = ua.StatusBadNotWritable
		default:
			results[i] = ua.StatusBadNodeIDUnknown
		}
	}
	return &ua.WriteResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, now),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// browse serves a Browse request. Namespace 0 is browsed by gopcua (with
// IncludeSubtypes forced on: gopcua loops forever without it) plus a
// reference from the Objects folder to the station's folder.
func (h *handlers) browse(sc *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.BrowseRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	now := time.Now()
	st := h.station(sc)
	results := make([]*ua.BrowseResult, len(req.NodesToBrowse))
	for i, bd := range req.NodesToBrowse {
		switch {
		case bd == nil || bd.NodeID == nil:
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDInvalid}
		case bd.NodeID.Namespace() == h.space.ns:
			h.space.mu.RLock()
			results[i] = h.space.browse(bd, st)
			h.space.mu.RUnlock()
		case bd.NodeID.Namespace() == 0:
			ns, err := h.srv.Namespace(0)
			if err != nil {
				results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
				continue
			}
			d := *bd
			d.IncludeSubtypes = true
			if d.ReferenceTypeID == nil {
				d.ReferenceTypeID = ua.NewNumericNodeID(0, 0)
			}
			res := ns.Browse(&d)
			if st >= 0 && res.StatusCode == ua.StatusOK && bd.NodeID.IntID() == id.ObjectsFolder &&
				bd.BrowseDirection != ua.BrowseDirectionInverse &&
				refTypeMatches(bd, id.Organizes, id.HierarchicalReferences, id.References) &&
				(bd.NodeClassMask == 0 || bd.NodeClassMask&uint32(ua.NodeClassObject) != 0) {
				res.References = append(res.References, h.space.folderRef(st))
			}
			results[i] = res
		default:
			results[i] = &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
		}
	}
	return &ua.BrowseResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, now),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// endpoint is a station's own listener. It relays each connection to the
// core and records which station the core-side connection belongs to.
type endpoint struct {
	station int
	hp      hostPort
	space   *tagSpace
	core    string // core address
	log     *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	cancel context.CancelFunc
	open   bool
	wg     sync.WaitGroup
}

// listen opens the endpoint's listener on hp (port 0: an ephemeral port,
// which hp then records). It does not accept connections yet.
func (e *endpoint) listen(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", e.hp.addr())
	if err != nil {
		return fmt.Errorf("station %s: listen on %s: %w", line[e.station].ID, e.hp.addr(), err)
	}
	e.hp.port = ln.Addr().(*net.TCPAddr).Port
	e.mu.Lock()
	e.ln = ln
	e.conns = make(map[net.Conn]struct{})
	e.mu.Unlock()
	return nil
}

// serve starts accepting connections on the listener opened by listen.
func (e *endpoint) serve(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.open = true
	e.wg.Add(1)
	go e.accept(cctx, e.ln)
}

func (e *endpoint) accept(ctx context.Context, ln net.Listener) {
	defer e.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("accept failed", "station", line[e.station].ID, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if !e.track(c) {
			c.Close()
			return
		}
		e.wg.Add(1)
		go e.relay(ctx, c)
	}
}

// track adds c to the open connections; it returns false when the endpoint
// is closing.
func (e *endpoint) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.open {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *endpoint) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	c.Close()
}

// relay connects client c to the core once the client has sent its Hello
// (so a silent client never holds up the core's accept loop) and copies
// bytes both ways until either side closes.
func (e *endpoint) relay(ctx context.Context, c net.Conn) {
	defer e.wg.Done()
	defer e.untrack(c)
	st := line[e.station].ID

	hello, err := readHello(c)
	if err != nil {
		e.log.Debug("client dropped before hello", "station", st, "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(ctx, "tcp", e.core)
	if err != nil {
		e.log.Warn("connect to opc ua core failed", "station", st, "err", err)
		return
	}
	if !e.track(up) {
		up.Close()
		return
	}
	defer e.untrack(up)
	key := up.LocalAddr().String()
	e.space.bindConn(key, e.station)
	defer e.space.unbindConn(key)
	if _, err := up.Write(hello); err != nil {
		return
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, up)
		c.Close()
		up.Close()
	}()
	_, _ = io.Copy(up, c)
	c.Close()
	up.Close()
	<-done
}

// readHello reads the client's first message, which must be an OPC UA
// Hello (HELF).
func readHello(c net.Conn) ([]byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(helloTimeout)); err != nil {
		return nil, err
	}
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	if string(hdr[:4]) != "HELF" {
		return nil, fmt.Errorf("first message %q is not a hello", hdr[:4])
	}
	size := binary.LittleEndian.Uint32(hdr[4:])
	if size < 8 || size > helloMax {
		return nil, fmt.Errorf("hello of %d bytes", size)
	}
	msg := make([]byte, size)
	copy(msg, hdr)
	if _, err := io.ReadFull(c, msg[8:]); err != nil {
		return nil, err
	}
	return msg, c.SetReadDeadline(time.Time{})
}

// close stops accepting, drops every connection and waits for the
// endpoint's goroutines. It is safe to call more than once.
func (e *endpoint) close() {
	e.mu.Lock()
	e.open = false
	if e.ln != nil {
		e.ln.Close()
	}
	for c := range e.conns {
		c.Close()
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// reopen listens again on the endpoint's port after close, retrying until
// ctx is done, and serves.
func (e *endpoint) reopen(ctx context.Context) error {
	delay := 5 * time.Millisecond
	for {
		err := e.listen(ctx)
		if err == nil {
			e.serve(ctx)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// gopcuaLogger adapts gopcua's printf-style logger to slog at debug level.
type gopcuaLogger struct{ log *slog.Logger }

func (l gopcuaLogger) Debug(msg string, args ...any) { l.emit("debug", msg, args) }
func (l gopcuaLogger) Info(msg string, args ...any)  { l.emit("info", msg, args) }
func (l gopcuaLogger) Warn(msg string, args ...any)  { l.emit("warn", msg, args) }
func (l gopcuaLogger) Error(msg string, args ...any) { l.emit("error", msg, args) }

func (l gopcuaLogger) emit(level, msg string, args []any) {
	// gopcua gives no context; slog's own Debug uses Background too.
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	l.log.Debug("gopcua: "+msg, "gopcua_level", level)
}
