package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The built web demo is served the way a CDN would serve it:
//
//   - Vite names everything under /assets/ by a hash of its content, so those
//     files never change under one name: a year of caching, immutable.
//     Everything else (index.html above all, which names the current
//     assets) is revalidated on every load.
//   - Text is gzipped for clients that accept it, compressed once per file
//     version and kept in memory (files change only on a rebuild, and the
//     cache follows a file's size and modification time).
//   - Source maps are never served, even if a build left some behind.
//   - Paths without an extension that name no file are client-side routes:
//     they get index.html.
const (
	immutableCache = "public, max-age=31536000, immutable"
	revalidate     = "no-cache"

	// gzipMinBytes: below about 1 KiB, gzip's header and the extra header
	// line cost more than they save (the same bound as CompressMinBytes).
	gzipMinBytes = 1 << 10
	// gzipMaxFileBytes keeps huge files out of memory: served as they are.
	gzipMaxFileBytes = 16 << 20
	// gzipCacheBytes bounds the cache; past it, the cache starts over (a
	// demo build is a few hundred KiB, so this only matters for odd dirs).
	gzipCacheBytes = 64 << 20
)

// compressible are the extensions worth gzipping: text. Images, fonts
// (woff2) and archives are compressed already.
var compressible = map[string]bool{
	".html": true, ".htm": true, ".css": true, ".js": true, ".mjs": true, ".json": true,
	".svg": true, ".txt": true, ".xml": true, ".webmanifest": true, ".wasm": true,
}

// staticFiles serves a directory of built web assets; see the comment above.
type staticFiles struct {
	dir http.Dir

	mu      sync.Mutex
	gz      map[string]gzipped // by cleaned URL path
	gzBytes int
	writers sync.Pool // *gzip.Writer, reused
}

// gzipped is one compressed version of a file; data is nil when gzip did
// not make it smaller.
type gzipped struct {
	size    int64
	modTime time.Time
	data    []byte
}

func newStaticFiles(dir string) *staticFiles {
	return &staticFiles{dir: http.Dir(dir), gz: make(map[string]gzipped)}
}

func (s *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	if strings.HasSuffix(p, ".map") || strings.Contains(p, "/.") {
		http.NotFound(w, r)
		return
	}
	name := p
	if name == "/" {
		name = "/index.html"
	}
	f, info, err := s.open(name)
	if err != nil && path.Ext(p) == "" && !errors.Is(err, errIsDir) {
		name = "/index.html" // a client-side route
		f, info, err = s.open(name)
	}
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()

	h := w.Header()
	if strings.HasPrefix(name, "/assets/") {
		h.Set("Cache-Control", immutableCache)
	} else {
		h.Set("Cache-Control", revalidate)
	}
	ext := path.Ext(name)
	if ct := mime.TypeByExtension(ext); ct != "" {
		h.Set("Content-Type", ct)
	}
	if compressible[ext] {
		h.Add("Vary", "Accept-Encoding")
		// A range of a gzip stream helps nobody; ranges get the file itself.
		if r.Header.Get("Range") == "" && acceptsGzip(r.Header) {
			if data := s.gzipped(name, f, info); data != nil {
				h.Set("Content-Encoding", "gzip")
				http.ServeContent(w, r, name, info.ModTime(), bytes.NewReader(data))
				return
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				http.Error(w, "read error", http.StatusInternalServerError)
				return
			}
		}
	}
	http.ServeContent(w, r, name, info.ModTime(), f)
}

var errIsDir = errors.New("is a directory")

// open opens a regular file of the directory; directories are refused so
// that nothing is ever listed.
func (s *staticFiles) open(name string) (http.File, fs.FileInfo, error) {
	f, err := s.dir.Open(name)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if info.IsDir() {
		f.Close()
		return nil, nil, errIsDir
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, os.ErrNotExist
	}
	return f, info, nil
}

// gzipped returns the file compressed, from the cache when the file has not
// changed since, or nil when it is not worth it.
func (s *staticFiles) gzipped(name string, f io.Reader, info fs.FileInfo) []byte {
	if info.Size() < gzipMinBytes || info.Size() > gzipMaxFileBytes {
		return nil
	}
	s.mu.Lock()
	c, ok := s.gz[name]
	s.mu.Unlock()
	if ok && c.size == info.Size() && c.modTime.Equal(info.ModTime()) {
		return c.data
	}
	// Compressed outside the lock: two first requests may both compress,
	// which costs less than making every other file wait.
	raw, err := io.ReadAll(io.LimitReader(f, info.Size()+1))
	if err != nil || int64(len(raw)) != info.Size() {
		return nil // changing under us: serve it uncompressed this time
	}
	var buf bytes.Buffer
	zw, _ := s.writers.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
	} else {
		zw.Reset(&buf)
	}
	_, _ = zw.Write(raw)
	_ = zw.Close()
	s.writers.Put(zw)
	c = gzipped{size: info.Size(), modTime: info.ModTime()}
	if buf.Len() < len(raw) {
		c.data = buf.Bytes()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.gz[name]; ok {
		s.gzBytes -= len(old.data)
	}
	if s.gzBytes+len(c.data) > gzipCacheBytes {
		clear(s.gz)
		s.gzBytes = 0
	}
	s.gz[name] = c
	s.gzBytes += len(c.data)
	return c.data
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip:
// listed (or "*" while gzip is not listed) with a q-value above zero.
func acceptsGzip(h http.Header) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, line := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(line, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			q := 1.0
			for _, param := range strings.Split(params, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				starQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
