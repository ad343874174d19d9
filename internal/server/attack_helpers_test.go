package server_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// slowBodyConn is an HTTP/1.1 connection that sends a request's headers and
// then its body one byte at a time, as a slowloris attacker does. A
// goroutine reads the server's response and waits for the server to close
// the connection.
type slowBodyConn struct {
	conn   net.Conn
	closed chan struct{} // closed when the server has closed the connection
	status atomic.Value  // the response, summarized: "" until one arrives
}

// attackRequest is one kind of request an attacker sends: the procedure and
// the content type that selects the protocol.
type attackRequest struct {
	name, path, contentType string
}

var slowBodyRequests = []attackRequest{
	{"connect unary", "/honeydo.realtime.v1.RealtimeService/Ping", "application/proto"},
	{"connect stream", "/honeydo.realtime.v1.RealtimeService/Subscribe", "application/connect+proto"},
	{"grpc-web stream", "/honeydo.realtime.v1.RealtimeService/Subscribe", "application/grpc-web+proto"},
	{"shopping unary", "/honeydo.shopping.v1.ShoppingService/ListItems", "application/proto"},
}

// dialSlowBody connects from laddr (nil: any) and sends req's headers, an
// optional Authorization header, and the first byte of a 1 KiB body.
func dialSlowBody(addr string, laddr net.Addr, req attackRequest, authorization string) (*slowBodyConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: laddr}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 1024\r\n", req.path, addr, req.contentType)
	if strings.HasPrefix(req.contentType, "application/grpc") {
		b.WriteString("X-Grpc-Web: 1\r\n")
	}
	if authorization != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", authorization)
	}
	b.WriteString("\r\n\x00")
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	c := &slowBodyConn{conn: conn, closed: make(chan struct{})}
	c.status.Store("")
	go c.read()
	return c, nil
}

func (c *slowBodyConn) read() {
	defer close(c.closed)
	br := bufio.NewReader(c.conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return
	}
	status := fmt.Sprintf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	if s := res.Header.Get("Grpc-Status"); s != "" {
		status += " grpc-status=" + s
	}
	c.status.Store(status)
	_, _ = io.Copy(io.Discard, br)
}

// drip sends one more byte of the body; it reports false once that fails.
func (c *slowBodyConn) drip() bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.conn.Write([]byte{0})
	return err == nil
}

// isClosed reports whether the server has closed the connection.
func (c *slowBodyConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// dripAll sends a byte on every open connection every interval until stop
// is closed; the returned channel is closed when it has stopped.
func dripAll(conns []*slowBodyConn, interval time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range conns {
				if !c.isClosed() {
					c.drip()
				}
			}
		}
	}()
	return done
}

func closeAll(conns []*slowBodyConn) {
	for _, c := range conns {
		c.conn.Close()
		<-c.closed
	}
}

// countOpen returns how many connections the server has not closed yet.
func countOpen(conns []*slowBodyConn) int {
	n := 0
	for _, c := range conns {
		if !c.isClosed() {
			n++
		}
	}
	return n
}

// rawH2 is a cleartext HTTP/2 client written frame by frame: it opens
// streams with a HEADERS frame and never sends their bodies, which no real
// client library lets a test do. A goroutine reads the server's frames,
// answers SETTINGS and PING, and counts the streams the server ended.
type rawH2 struct {
	conn net.Conn
	wmu  sync.Mutex

	maxStreams atomic.Uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	settings   chan struct{} // closed on the server's first SETTINGS
	ended      atomic.Int64  // streams the server ended or reset
	goAway     atomic.Bool
	closed     chan struct{} // closed when the connection is gone
}

const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2FlagEndStrm  = 0x1
	h2FlagAck      = 0x1
	h2FlagEndHdrs  = 0x4
	h2SettingMaxCS = 0x3
)

func dialRawH2(addr string) (*rawH2, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &rawH2{conn: conn, settings: make(chan struct{}), closed: make(chan struct{})}
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.writeFrame(h2Settings, 0, 0, nil); err != nil {
		conn.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

func (c *rawH2) writeFrame(typ, flags byte, stream uint32, payload []byte) error {
	var hdr [9]byte
	hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	hdr[3], hdr[4] = typ, flags
	binary.BigEndian.PutUint32(hdr[5:], stream)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(hdr[:]); err != nil {
		return err
	}
	_, err := c.conn.Write(payload)
	return err
}

// hpackLiteral encodes a header field as a literal without indexing, with a
// literal name: the one HPACK form that needs no table.
func hpackLiteral(b []byte, name, value string) []byte {
	b = append(b, 0x00)
	for _, s := range []string{name, value} {
		// The length is an HPACK integer with a 7-bit prefix (RFC 7541,
		// 5.1); the H bit stays 0: no Huffman coding.
		n := len(s)
		if n < 127 {
			b = append(b, byte(n))
		} else {
			b = append(b, 127)
			for n -= 127; n >= 128; n >>= 7 {
				b = append(b, byte(n&127|128))
			}
			b = append(b, byte(n))
		}
		b = append(b, s...)
	}
	return b
}

// openStream sends the headers of a request whose body never comes.
func (c *rawH2) openStream(id uint32, authority string, req attackRequest, authorization string) error {
	var block []byte
	block = hpackLiteral(block, ":method", "POST")
	block = hpackLiteral(block, ":scheme", "http")
	block = hpackLiteral(block, ":path", req.path)
	block = hpackLiteral(block, ":authority", authority)
	block = hpackLiteral(block, "content-type", req.contentType)
	block = hpackLiteral(block, "te", "trailers")
	if authorization != "" {
		block = hpackLiteral(block, "authorization", authorization)
	}
	return c.writeFrame(h2Headers, h2FlagEndHdrs, id, block)
}

func (c *rawH2) read() {
	defer close(c.closed)
	ended := map[uint32]bool{}
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags := hdr[3], hdr[4]
		stream := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.conn, payload); err != nil {
			return
		}
		end := false
		switch typ {
		case h2Settings:
			if flags&h2FlagAck != 0 {
				continue
			}
			for p := payload; len(p) >= 6; p = p[6:] {
				if binary.BigEndian.Uint16(p) == h2SettingMaxCS {
					c.maxStreams.Store(binary.BigEndian.Uint32(p[2:]))
				}
			}
			if err := c.writeFrame(h2Settings, h2FlagAck, 0, nil); err != nil {
				return
			}
			select {
			case <-c.settings:
			default:
				close(c.settings)
			}
		case h2Ping:
			if flags&h2FlagAck == 0 {
				if err := c.writeFrame(h2Ping, h2FlagAck, 0, payload); err != nil {
					return
				}
			}
		case h2GoAway:
			c.goAway.Store(true)
		case h2Headers, h2Data:
			end = flags&h2FlagEndStrm != 0
		case h2RSTStream:
			end = true
		}
		if end && !ended[stream] {
			ended[stream] = true
			c.ended.Add(1)
		}
	}
}

func (c *rawH2) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// resources samples the process while an attack runs: the most goroutines
// and the most heap in use seen, and the resident set size.
type resources struct {
	stop chan struct{}
	done chan struct{}

	baseGoroutines, peakGoroutines int
	baseHeap, peakHeap             uint64
	baseRSS, peakRSS               int64
}

// sampleResources records the baseline after a GC, then samples every
// 20 ms until Stop.
func sampleResources() *resources {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := &resources{stop: make(chan struct{}), done: make(chan struct{}),
		baseGoroutines: runtime.NumGoroutine(), baseHeap: ms.HeapInuse, baseRSS: rss()}
	r.peakGoroutines, r.peakHeap, r.peakRSS = r.baseGoroutines, r.baseHeap, r.baseRSS
	go func() {
		defer close(r.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			r.peakGoroutines = max(r.peakGoroutines, runtime.NumGoroutine())
			runtime.ReadMemStats(&ms)
			r.peakHeap = max(r.peakHeap, ms.HeapInuse)
			r.peakRSS = max(r.peakRSS, rss())
		}
	}()
	return r
}

// Stop ends sampling; the peaks are then safe to read.
func (r *resources) Stop() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

func (r *resources) String() string {
	return fmt.Sprintf("goroutines %d -> peak %d (+%d); heap in use +%.1f MiB at peak; RSS +%.1f MiB at peak",
		r.baseGoroutines, r.peakGoroutines, r.peakGoroutines-r.baseGoroutines,
		float64(r.peakHeap-min(r.peakHeap, r.baseHeap))/(1<<20), float64(r.peakRSS-r.baseRSS)/(1<<20))
}

// rss returns the process's resident set size in bytes, or 0 where
// /proc/self/status is not available.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

var errStillOpen = errors.New("still open")
