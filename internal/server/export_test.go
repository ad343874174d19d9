package server

// DirectStreams returns how many of s's streams are direct (direct.go).
func DirectStreams(s *Server) int {
	d := &s.realtime.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.live)
}
