//go:build !linux

package connwatch

import "syscall"

// poller is empty where there is no epoll: every connection is watched by
// a goroutine of its own.
type poller struct{}

// watchPolled reports that rc cannot be polled here, so Watch falls back
// to a goroutine.
func (w *Watcher) watchPolled(rc syscall.RawConn, f func(data bool)) (stop func(), ok bool, err error) {
	return nil, false, nil
}

// closePoller has nothing to release.
func (w *Watcher) closePoller() error { return nil }
