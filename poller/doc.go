// Package poller tells the server which sockets are ready.
//
// It is one small interface, Poller, with an epoll implementation on Linux
// built on easygo's low-level netpoll.Epoll (EpollCreate, Add, Mod, Del),
// which works on raw file descriptors. Nothing here dups a descriptor or
// wraps it in an os.File: a connection costs exactly one fd (easygo's
// higher-level netpoll.Handle dups, and os.File.Fd flips the socket back to
// blocking mode, easygo issue #11).
//
// # Trigger mode and re-arm rules
//
// Every descriptor is registered once, edge-triggered (EPOLLET), for
// EPOLLIN|EPOLLOUT|EPOLLRDHUP; EPOLLERR and EPOLLHUP are always reported.
// Nothing is ever re-armed: there is no EPOLLONESHOT and no epoll_ctl(MOD) on
// the hot path, so an event costs no system call beyond epoll_wait itself.
//
// The price of edge triggering is a contract on the consumer:
//
//   - After EventRead the consumer must read until the socket is drained
//     (or hand the descriptor back to itself to continue later), because the
//     kernel will not report the same bytes twice. A read that returns less
//     than asked also proves the socket drained (every later arrival is a
//     new edge), except after EventHangup: the peer's FIN may already have
//     arrived with the data, and no new edge would report it.
//   - After EventWrite it must write until EAGAIN or until it has nothing left
//     to write; the next EventWrite comes only when the socket goes from full
//     to writable again.
//   - Events may be spurious (for example for a descriptor number that was
//     closed and reused between epoll_wait and the callback): the consumer
//     must treat an event as "try", never as "there is data".
//
// # Goroutines
//
// One goroutine (easygo's wait loop) calls epoll_wait and then the Dispatch
// function for each ready descriptor, in order. Dispatch runs on that
// goroutine, so it must not block and must not allocate: it should record
// the event and hand the descriptor to a worker. A slow Dispatch delays every
// other connection.
//
// Add and Del may be called from any goroutine. Del must be called before the
// descriptor is closed, so that a later descriptor with the same number can
// be added again. AddFunc gives one descriptor (a listening socket) a
// Dispatch of its own, so its events never reach the connections'.
//
// # Memory
//
// easygo calls one callback per descriptor; the poller makes a closure per
// descriptor number the first time the number is added and keeps it for
// later connections on the same number. The closures live in 2 KiB chunks
// of 256 numbers under a directory that doubles, both made by Add under
// the poller's lock, and owned by the poller until Close: a new poller
// holds none, and one holds only the chunks of numbers it was given
// (with the server's workers each taking every Workers-th number, a chunk
// is 1/Workers full). Nothing depends on the open-file limit. easygo
// itself starts each instance with an event array of 1,024 (12 KiB) and a
// callback array of 1,024 (8 KiB), doubled up to 32,768 when an
// epoll_wait fills them.
package poller
