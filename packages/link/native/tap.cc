// The TAP device, as a small N-API addon (plain node_api.h, no C++ wrapper library).
//
//   open(name, netns, vnetHeaderLength, napi)
//                              opens /dev/net/tun as a TAP device (IFF_TAP | IFF_NO_PI,
//                              non-blocking, close-on-exec). With `netns`, the calling thread
//                              enters /run/netns/<netns> just around the open, TUNSETIFF and
//                              the creation of a control socket, then returns to its own
//                              namespace: the device and the socket stay in the target.
//                              With vnetHeaderLength 10 or 12 (0: off), the device carries a
//                              virtio-net header in front of every frame both ways
//                              (IFF_VNET_HDR, TUNSETVNETHDRSZ) and the kernel may hand us, and
//                              takes from us, TCP/IPv4 super-frames of up to 64 KB with the
//                              checksum left partial (TUNSETOFFLOAD TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6).
//                              Reads then give the header and the frame as one piece; the
//                              TypeScript side (virtio-net.ts) decodes the header.
//                              With napi true, the device is opened with IFF_NAPI: a frame we
//                              write is queued for the device's NAPI poll, which hands it to
//                              napi_gro_receive instead of straight to the kernel's IP, so GRO
//                              may merge consecutive TCP segments of one flow. A write(2) runs
//                              that poll itself, at its end, and the poll flushes GRO when it
//                              completes unless the device's gro_flush_timeout (sysfs, set from
//                              tap.ts) lets it hold the merged packet for the next writes.
//   handle.start(lengths, onFrames, onWritable, onError)
//                              watches the fd with uv_poll on the main loop. On each readable
//                              wake-up it reads frames until EAGAIN (at most MAX_BATCH) into a
//                              native arena, copies them into ONE new ArrayBuffer, writes the
//                              frame lengths into `lengths` (a Uint32Array owned by JS) and
//                              makes ONE call into JS: onFrames(buffer, count).
//   handle.start(..., ioThreads = true)
//                              the same reading, plus a writer thread (see "The writer thread"
//                              below): writeBatch writes a small batch itself while the thread
//                              is idle and hands it the large ones (and everything while it is
//                              busy); the thread wakes the loop with uv_async_send when it frees
//                              a send buffer that a waiting sender wants.
//   handle.takeTxFailures(status)
//                              with the writer thread: frames the writer could not write, not yet
//                              reported by a writeBatch (close() asks after the writer stopped).
//   handle.txRoom()            with the writer thread: frames writeBatch takes now without parking them.
//   handle.write(frame, header?)
//                              write(2) on the non-blocking fd, on the calling thread (no thread
//                              pool): bytes written, or -errno (-EAGAIN when the queue is full).
//                              With a header (vnet mode), writev(2) of header then frame: one
//                              system call, no copy to join them.
//   handle.writeBatch(frames, lengths, count, status)
//                              the send side's batch: `frames` (a Uint8Array owned by JS) holds
//                              `count` frames back to back, `lengths` their lengths (each with its
//                              virtio-net header in front, in vnet mode). One call from JS, then
//                              one write(2) per frame (the tun driver takes one frame per write).
//                              Returns how many frames it got through: all, or fewer when the
//                              device queue filled (EAGAIN; the rest are the caller's to keep).
//                              A frame the kernel refuses otherwise is counted in status[0] (the
//                              last errno in status[1]) and skipped, as a lost frame would be.
//                              With the writer thread, status[2] and status[3] (when `status` has
//                              them) count the batches and frames handed to the thread.
//   handle.readNow()           reads what the device holds now, as a readable wake-up would, and
//                              hands it to onFrames before returning: for a timer that is about
//                              to act (a retransmission) on news older than what waits unread.
//   handle.wantWritable(on)    also wake up (onWritable()) when the fd becomes writable.
//   handle.configure(...)      host side: MTU, IPv4 address + netmask, up/down (ioctls on the
//                              control socket, so they apply inside the device's namespace).
//   handle.hostMac()           the kernel side's MAC (SIOCGIFHWADDR).
//   handle.ref()/unref()       whether the open device keeps the event loop alive.
//   handle.close()             stops the poll, closes the fds. Idempotent.
//
// Errors are JS Errors with .code (errno name, e.g. 'EBUSY'), .errno and .syscall; the
// TypeScript side turns them into TapError with a message that names the fix. The error given to
// onError when the running device fails also has .deviceGone (the interface no longer exists).

#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
// linux/virtio_net.h is a C header with a field named `class` (in the control-queue struct we
// do not use); C++ reserves the word, so it is renamed for the length of the include.
#define class class_
#include <linux/virtio_net.h>
#undef class
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

// One read(2) gets a slot big enough for the largest frame a TAP device can carry
// (MTU 65535 + 14 header bytes, plus a virtio-net header of at most 12), so a frame is never
// truncated.
constexpr size_t kSlot = 65536 + 64;
static_assert(kSlot >= 65535 + 14 + sizeof(struct virtio_net_hdr_mrg_rxbuf), "a slot holds the largest frame");
// Frames per wake-up at most; the poll is level-triggered, so what is left is read on the next
// turn of the loop, after timers and other I/O had their chance.
constexpr uint32_t kMaxBatch = 256;
// 256 full 1500-MTU frames need 388 KB; the arena also holds at least 16 jumbo frames.
constexpr size_t kArena = 16 * kSlot;

// The writer thread (start(..., ioThreads = true)). The tun driver takes one frame per write(2), and
// each write runs the kernel's receive path for that frame (for a download: IP, TCP, the socket,
// waking the reader of the socket) before it returns; on the plain path that is ~73,500 writes per
// 100 MiB, on the main thread between the JavaScript that builds the frames. A writer thread does
// them beside the JavaScript instead, on the machine's other core, but a hand-off costs a thread
// wake-up (a futex, a few microseconds, and the cache lines that move with the batch). So the
// hand-off is hybrid: a small batch while the writer is idle is written on the calling thread, as
// without the thread (a ping-pong's one frame pays no wake-up); a large batch, or any batch while
// the writer still holds one (frames must not pass each other), goes to the writer through a small
// fixed ring. A full ring makes writeBatch take nothing: JS keeps the frames staged and waits for
// onWritable, so neither side grows.
// Reading stays on the main thread (uv_poll, as without the thread; while the writer is busy,
// clocked by its batches instead: pause_poll below). A reader thread, measured (docs/01-link.md),
// added a second wake-up to every received batch and cost a ping-pong more than it saved a bulk
// transfer.
//
// The ring: kTxBuffers batches. A batch is a copy of what JS staged (frames back to back and their
// lengths): JS may refill its staging buffer as soon as writeBatch returns.
constexpr uint32_t kTxBuffers = 4;
constexpr size_t kTxBufferBytes = 512 * 1024 + kSlot;  // JS stages 512 KiB at most; one write() frame at most kSlot
// Batches of at most this many frames go out on the calling thread when the writer is idle.
constexpr uint32_t kDirectWriteFrames = 2;

struct TxBatch {
  uint8_t* bytes = nullptr;  // kTxBufferBytes, allocated at start
  uint32_t lengths[kMaxBatch];
  uint32_t count = 0;
  size_t used = 0;  // bytes
};

// What the writer thread shares with the main thread. Who owns what, when:
//  - tx[i]: a batch in [tx_head, tx_head + tx_pending) (mod kTxBuffers) is submitted: the one at
//    tx_head belongs to the writer thread from the moment it takes it (under tx_mutex) until it
//    lowers tx_pending after its last write(2) of it. A submitted batch behind tx_head is not
//    started yet: the main thread may still append frames to the last one, but only while it holds
//    tx_mutex, which the writer needs to take a batch. Every other batch belongs to the main
//    thread, which fills the one at tx_head + tx_pending before it raises tx_pending.
//  - the fd: both threads write(2) on it, never at once for frames of one sender: the main thread
//    writes directly only while tx_pending is 0 (the writer holds nothing and waits), and hands
//    everything to the writer otherwise. The main thread also reads it (reads and writes of a tun
//    fd do not interfere).
//  - the thread never touches napi values, JS memory (the staging buffer, `lengths`), or the uv
//    handles except uv_async_send (the one libuv call that is safe from any thread).
struct IoThreads {
  std::thread writer;
  int stop_fd = -1;  // eventfd: written once by close() to wake the writer blocked in poll()
  std::atomic<bool> stop{false};

  std::mutex tx_mutex;
  std::condition_variable tx_wake;  // main -> writer: a batch was submitted, or stop
  TxBatch tx[kTxBuffers];
  uint32_t tx_head = 0;     // under tx_mutex
  uint32_t tx_pending = 0;  // under tx_mutex
  std::atomic<bool> want_writable{false};   // main thread waits for a free tx batch
  // The main thread reads when the writer finishes a batch instead of when the fd turns readable
  // (pause_poll): the writer then wakes the loop after every batch.
  std::atomic<bool> read_on_writer{false};
  std::atomic<int32_t> tx_failed{0};        // frames the kernel refused (not EAGAIN), not yet reported
  std::atomic<int32_t> tx_last_errno{0};
};

struct Tap {
  napi_env env = nullptr;
  int fd = -1;
  int ctl = -1;  // AF_INET datagram socket created in the device's namespace, for ioctls
  char ifname[IFNAMSIZ] = {0};
  uv_poll_t poll;
  bool started = false;
  bool closed = false;
  bool want_writable = false;
  bool keep_alive = true;   // ref()/unref(): whether the device keeps the loop alive
  bool poll_paused = false; // with the writer: reads wait for its batches (read_on_writer)
  bool handle_closed = false;  // every uv_close finished (or none was needed)
  bool finalized = false;      // the JS wrapper is gone
  napi_ref on_frames = nullptr;
  napi_ref on_writable = nullptr;
  napi_ref on_error = nullptr;
  napi_ref lengths_ref = nullptr;
  uint32_t* lengths = nullptr;
  napi_async_context async_context = nullptr;
  uint8_t* arena = nullptr;
  // With the writer thread: it wakes the loop with `wake` when it frees a send batch.
  IoThreads* io = nullptr;
  uv_async_t wake;
  int open_handles = 0;  // uv handles started and not yet closed (poll, and wake with the thread)
  bool error_reported = false;
  bool cleanup_hook = false;
};

const char* errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EBADFD: return "EBADFD";
    case EIO: return "EIO";
    case EFAULT: return "EFAULT";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    default: return "EUNKNOWN";
  }
}

napi_value make_errno_error(napi_env env, int err, const char* syscall) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s (%s)", syscall, strerror(err), errno_name(err));
  napi_value msg, code, error, errno_value, syscall_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

void throw_errno(napi_env env, int err, const char* syscall) {
  napi_throw(env, make_errno_error(env, err, syscall));
}

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      bool pending = false;                                                      \
      napi_is_exception_pending(env, &pending);                                  \
      if (!pending) napi_throw_error(env, nullptr, "tap addon: " #call " failed"); \
      return nullptr;                                                            \
    }                                                                            \
  } while (0)

void maybe_free(Tap* t) {
  if (t->handle_closed && t->finalized) {
    free(t->arena);
    if (t->io) {
      for (TxBatch& b : t->io->tx) free(b.bytes);
      delete t->io;
    }
    delete t;
  }
}

void stop_threads(Tap* t);
void cleanup_threads(void* data);

void on_handle_closed(uv_handle_t* handle) {
  Tap* t = static_cast<Tap*>(handle->data);
  if (--t->open_handles == 0) {
    t->handle_closed = true;
    maybe_free(t);
  }
}

void drop_ref(napi_env env, napi_ref* ref) {
  if (*ref) {
    napi_delete_reference(env, *ref);
    *ref = nullptr;
  }
}

// Releases everything. Safe to call from inside a callback (the struct lives until the
// uv_close callback and the wrapper's finalizer have both run).
void close_tap(Tap* t, bool in_finalizer) {
  if (t->closed) return;
  t->closed = true;
  if (t->io) {
    // The writer goes first (before the fd closes under it, and before the async handle it
    // wakes): stop_threads joins it, after it has written what it was given.
    stop_threads(t);
    if (t->cleanup_hook) {
      napi_remove_env_cleanup_hook(t->env, cleanup_threads, t);
      t->cleanup_hook = false;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&t->wake), on_handle_closed);
  }
  if (t->started) {
    uv_poll_stop(&t->poll);  // also removes the fd from epoll before we close it
    uv_close(reinterpret_cast<uv_handle_t*>(&t->poll), on_handle_closed);
  }
  if (t->open_handles == 0) t->handle_closed = true;
  if (t->fd >= 0) close(t->fd);
  if (t->ctl >= 0) close(t->ctl);
  t->fd = -1;
  t->ctl = -1;
  napi_env env = t->env;
  drop_ref(env, &t->on_frames);
  drop_ref(env, &t->on_writable);
  drop_ref(env, &t->on_error);
  drop_ref(env, &t->lengths_ref);
  t->lengths = nullptr;
  if (t->async_context && !in_finalizer) {
    napi_async_destroy(env, t->async_context);
    t->async_context = nullptr;
  }
}

void finalize(napi_env env, void* data, void*) {
  Tap* t = static_cast<Tap*>(data);
  close_tap(t, true);
  t->finalized = true;
  maybe_free(t);
}

// Calls a JS callback from a libuv callback: handle scope, async context (so promises and
// nextTicks queued by the callback run right after it), and an uncaught exception is reported
// like any other instead of vanishing.
void call_js(Tap* t, napi_ref ref, size_t argc, napi_value* argv) {
  napi_env env = t->env;
  napi_value fn, global, result;
  if (!ref || napi_get_reference_value(env, ref, &fn) != napi_ok || fn == nullptr) return;
  napi_get_global(env, &global);
  napi_status status = napi_make_callback(env, t->async_context, global, fn, argc, argv, &result);
  if (status == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

int ifreq_ioctl(Tap* t, unsigned long request, struct ifreq* ifr) {
  memset(ifr->ifr_name, 0, IFNAMSIZ);
  memcpy(ifr->ifr_name, t->ifname, IFNAMSIZ - 1);
  return ioctl(t->ctl, request, ifr);
}

// The device failed under us (a read error, or POLLERR). Tells JS why, as precisely as the kernel
// says: libuv reports POLLERR as EBADF although our descriptor is fine, so a zero-length read asks
// the tun driver for the real reason (EBADFD once the device is deleted); and the error carries
// `deviceGone: true` when the interface no longer exists in its namespace (SIOCGIFINDEX: ENODEV).
void report_error(Tap* t, int err, const char* syscall) {
  if (err == EBADF && t->fd >= 0) {
    char unused;
    if (read(t->fd, &unused, 0) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      err = errno;
      syscall = "read";
    }
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  bool gone = t->ctl >= 0 && ifreq_ioctl(t, SIOCGIFINDEX, &ifr) < 0 && errno == ENODEV;
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value error = make_errno_error(env, err, syscall);
  napi_value gone_value;
  napi_get_boolean(env, gone, &gone_value);
  napi_set_named_property(env, error, "deviceGone", gone_value);
  call_js(t, t->on_error, 1, &error);
  napi_close_handle_scope(env, scope);
}

void read_batch(Tap* t) {
  size_t used = 0;
  uint32_t count = 0;
  int err = 0;
  while (count < kMaxBatch && kArena - used >= kSlot) {
    ssize_t n = read(t->fd, t->arena + used, kSlot);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0) break;
    t->lengths[count++] = static_cast<uint32_t>(n);
    used += static_cast<size_t>(n);
  }
  if (count > 0) {
    napi_env env = t->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    void* data = nullptr;
    napi_value buffer, count_value;
    if (napi_create_arraybuffer(env, used, &data, &buffer) == napi_ok) {
      memcpy(data, t->arena, used);  // the one copy per frame
      napi_create_uint32(env, count, &count_value);
      napi_value argv[2] = {buffer, count_value};
      call_js(t, t->on_frames, 2, argv);
    }
    napi_close_handle_scope(env, scope);
  }
  if (err && !t->closed) {
    uv_poll_stop(&t->poll);
    report_error(t, err, "read");
  }
}

void on_poll(uv_poll_t* handle, int status, int events) {
  Tap* t = static_cast<Tap*>(handle->data);
  if (t->closed) return;
  if (status < 0) {
    uv_poll_stop(&t->poll);
    report_error(t, -status, "poll");
    return;
  }
  if (events & UV_READABLE) read_batch(t);
  if (!t->closed && (events & UV_WRITABLE) && t->want_writable) {
    napi_handle_scope scope;
    napi_open_handle_scope(t->env, &scope);
    call_js(t, t->on_writable, 0, nullptr);
    napi_close_handle_scope(t->env, scope);
  }
}


// ---- The writer thread -------------------------------------------------------------------

// Blocks until the fd is writable or close() wrote stop_fd; false on stop. POLLERR/POLLHUP count
// as writable: the next write says why.
bool wait_writable(Tap* t) {
  IoThreads* io = t->io;
  struct pollfd fds[2] = {{t->fd, POLLOUT, 0}, {io->stop_fd, POLLIN, 0}};
  for (;;) {
    if (io->stop.load()) return false;
    int r = poll(fds, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    return r >= 0 && !fds[1].revents;
  }
}

// The writer thread: takes submitted batches in order and writes their frames in order, one
// write(2) each. EAGAIN (the device queue is full) waits for POLLOUT and tries the same frame again,
// so nothing is reordered or skipped; a frame the kernel refuses otherwise (EBADFD once the device
// is deleted) is counted in tx_failed. After stop it still writes what it was given (close() flushes
// the last ACK or RST first), unless the device would make it wait: then the rest is counted as failed.
void writer_main(Tap* t) {
  pthread_setname_np(pthread_self(), "tap-writer");  // for top -H and /proc/<pid>/task/*/comm
  IoThreads* io = t->io;
  for (;;) {
    uint32_t index;
    {
      std::unique_lock<std::mutex> lock(io->tx_mutex);
      io->tx_wake.wait(lock, [io] { return io->tx_pending > 0 || io->stop.load(); });
      if (io->tx_pending == 0) return;  // stopped, nothing left
      index = io->tx_head;
    }
    // tx[index] is ours until tx_pending drops below; from here nobody appends to it.
    TxBatch& batch = io->tx[index];
    const uint8_t* at = batch.bytes;
    for (uint32_t i = 0; i < batch.count; i++) {
      uint32_t length = batch.lengths[i];
      ssize_t n;
      for (;;) {
        n = write(t->fd, at, length);
        if (n >= 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        if (!wait_writable(t)) {
          errno = ECANCELED;
          break;
        }
      }
      if (n < 0) {
        io->tx_failed.fetch_add(1);
        io->tx_last_errno.store(errno);
      }
      at += length;
    }
    {
      std::lock_guard<std::mutex> lock(io->tx_mutex);
      io->tx_head = (io->tx_head + 1) % kTxBuffers;
      io->tx_pending--;
      // From here tx[index] is the main thread's again.
    }
    if (io->want_writable.load() || io->read_on_writer.load()) uv_async_send(&t->wake);
  }
}

// Stops and joins the writer. Only the main thread (or the env's cleanup) calls it; no napi.
void stop_threads(Tap* t) {
  IoThreads* io = t->io;
  if (!io || io->stop.exchange(true)) return;
  uint64_t one = 1;
  if (write(io->stop_fd, &one, sizeof one) < 0) {
    // an eventfd write fails only on overflow; the flag and the condition variable still stop it
  }
  {
    std::lock_guard<std::mutex> lock(io->tx_mutex);
  }
  io->tx_wake.notify_all();
  if (io->writer.joinable()) io->writer.join();
  close(io->stop_fd);
  io->stop_fd = -1;
}

// The process is ending with the device still open (unref): the thread stops before Node does.
void cleanup_threads(void* data) {
  Tap* t = static_cast<Tap*>(data);
  t->cleanup_hook = false;
  stop_threads(t);
}

// Frames the writer could not write since the last call: added to status[0] (last errno in status[1]).
void take_tx_failures(Tap* t, int32_t* status) {
  if (!t->io) return;
  int32_t failed = t->io->tx_failed.exchange(0);
  if (failed > 0) {
    status[0] += failed;
    status[1] = t->io->tx_last_errno.load();
  }
}

// Which handle keeps the loop alive for an open, ref()'d device: the poll, or while it is paused
// the writer's wake-up (the poll stopped is inactive, and a device that waits for its writer must
// not let the process end under it).
void update_refs(Tap* t) {
  uv_handle_t* poll = reinterpret_cast<uv_handle_t*>(&t->poll);
  if (t->keep_alive) uv_ref(poll);
  else uv_unref(poll);
  if (!t->io) return;
  uv_handle_t* wake = reinterpret_cast<uv_handle_t*>(&t->wake);
  if (t->keep_alive && t->poll_paused) uv_ref(wake);
  else uv_unref(wake);
}

// Reading clocked by the writer. Under a sustained bulk send the writer always holds a batch, and
// every frame it writes makes the kernel answer at once (an ACK for every second segment). Woken
// by each answer, the main thread would run a turn of JavaScript for one or two ACKs and hand the
// writer a batch of two or three segments: measured, 5 frames per batch against 246 without the
// thread, and the JavaScript per batch cost more than the writer saved. So while the writer holds a
// batch, the main thread stops watching the fd and reads when the writer finishes one: the answers
// to the whole batch at once, and the next batch is as large as without the thread, while the writer
// writes the one before it. With the writer idle the poll is back, as without the thread: a
// ping-pong is read the moment it arrives.
void pause_poll(Tap* t) {
  if (t->poll_paused) return;
  t->io->read_on_writer.store(true);  // before the batch is submitted: the writer sees it when it is done
  uv_poll_stop(&t->poll);
  t->poll_paused = true;
  update_refs(t);
}

void resume_poll(Tap* t) {
  if (!t->poll_paused) return;
  t->poll_paused = false;
  t->io->read_on_writer.store(false);
  int r = uv_poll_start(&t->poll, UV_READABLE, on_poll);
  update_refs(t);
  if (r < 0) report_error(t, -r, "uv_poll_start");
}

// Main thread, on uv_async_send from the writer, which finished a batch: what the device holds
// (while the poll is paused), then the poll back if the writer is idle now, then a free send batch
// for a sender that found them all in flight (onWritable).
void on_wake(uv_async_t* handle) {
  Tap* t = static_cast<Tap*>(handle->data);
  if (t->closed) return;
  IoThreads* io = t->io;
  if (t->poll_paused) {
    read_batch(t);
    if (t->closed) return;
    bool idle;
    {
      std::lock_guard<std::mutex> lock(io->tx_mutex);
      idle = io->tx_pending == 0;
    }
    if (idle) resume_poll(t);
    if (t->closed) return;
  }
  if (io->want_writable.load()) {
    bool free_batch;
    {
      std::lock_guard<std::mutex> lock(io->tx_mutex);
      free_batch = io->tx_pending < kTxBuffers;
    }
    if (free_batch) {
      napi_handle_scope scope;
      napi_open_handle_scope(t->env, &scope);
      call_js(t, t->on_writable, 0, nullptr);
      napi_close_handle_scope(t->env, scope);
    }
  }
}

// Main thread: the batch the writer takes next, or -1 when all are in flight; *writer_idle says
// whether the writer holds nothing. The caller fills the batch and then calls submit(); until then
// the writer does not look at it.
int free_tx_batch(IoThreads* io, bool* writer_idle) {
  std::lock_guard<std::mutex> lock(io->tx_mutex);
  if (writer_idle) *writer_idle = io->tx_pending == 0;
  if (io->tx_pending == kTxBuffers) return -1;
  return static_cast<int>((io->tx_head + io->tx_pending) % kTxBuffers);
}

void submit_tx_batch(IoThreads* io) {
  {
    std::lock_guard<std::mutex> lock(io->tx_mutex);
    io->tx_pending++;
    // From here the batch is the writer's.
  }
  io->tx_wake.notify_one();
}

// Main thread: hands `count` frames (back to back in `frames`, `bytes` in all) to the writer, behind
// everything it holds; false when the ring has no room (nothing taken). While the writer is busy
// with one batch and the next is already waiting, the frames join that waiting batch: under a
// sustained send the writer then takes a few large batches instead of many small ones, and the
// room writeBatch reports (txRoom, the sender's burst limit) is counted in frames, not in batches.
bool hand_to_writer(Tap* t, const uint8_t* frames, const uint32_t* lengths, uint32_t count, size_t bytes) {
  IoThreads* io = t->io;
  pause_poll(t);  // before the writer can be done with it
  int index;
  {
    std::lock_guard<std::mutex> lock(io->tx_mutex);
    if (io->tx_pending >= 2) {
      TxBatch& waiting = io->tx[(io->tx_head + io->tx_pending - 1) % kTxBuffers];
      if (waiting.count + count <= kMaxBatch && waiting.used + bytes <= kTxBufferBytes) {
        // not started (it is behind tx_head), and the writer cannot start it while we hold the mutex
        memcpy(waiting.bytes + waiting.used, frames, bytes);
        memcpy(waiting.lengths + waiting.count, lengths, count * sizeof(uint32_t));
        waiting.count += count;
        waiting.used += bytes;
        return true;
      }
    }
    if (io->tx_pending == kTxBuffers) return false;
    index = static_cast<int>((io->tx_head + io->tx_pending) % kTxBuffers);
  }
  TxBatch& batch = io->tx[index];  // free, ours until submitted
  memcpy(batch.bytes, frames, bytes);
  memcpy(batch.lengths, lengths, count * sizeof(uint32_t));
  batch.count = count;
  batch.used = bytes;
  submit_tx_batch(io);
  return true;
}

Tap* unwrap_this(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, nullptr) != napi_ok) return nullptr;
  void* data = nullptr;
  if (napi_unwrap(env, self, &data) != napi_ok || data == nullptr) {
    napi_throw_error(env, nullptr, "tap addon: not a TAP handle");
    return nullptr;
  }
  return static_cast<Tap*>(data);
}

Tap* unwrap_open(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  Tap* t = unwrap_this(env, info, argc, argv);
  if (t && t->closed) {
    throw_errno(env, EBADF, "tap (device is closed)");
    return nullptr;
  }
  return t;
}

// The data and element count of `value` if it is a typed array of type `want`; otherwise
// throws a TypeError saying `message` (unless an exception is already pending) and returns false.
bool typed_array_data(napi_env env, napi_value value, napi_typedarray_type want, const char* message,
                      void** data, size_t* length) {
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &arraybuffer, &offset) == napi_ok && type == want) {
    return true;
  }
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_type_error(env, nullptr, message);
  return false;
}

// The writer thread and its wake-up handle, beside the poll that Start() has set up already.
napi_value start_threads(napi_env env, Tap* t, uv_loop_t* loop) {
  IoThreads* io = new IoThreads();
  bool ok = true;
  for (TxBatch& b : io->tx) ok = ok && (b.bytes = static_cast<uint8_t*>(malloc(kTxBufferBytes))) != nullptr;
  io->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int err = !ok ? ENOMEM : io->stop_fd < 0 ? errno : 0;
  int r = err ? 0 : uv_async_init(loop, &t->wake, on_wake);
  if (err || r < 0) {
    for (TxBatch& b : io->tx) free(b.bytes);
    if (io->stop_fd >= 0) close(io->stop_fd);
    delete io;
    throw_errno(env, err ? err : -r, err ? "malloc/eventfd" : "uv_async_init");
    return nullptr;
  }
  t->open_handles++;
  uv_unref(reinterpret_cast<uv_handle_t*>(&t->wake));  // the poll alone keeps the loop alive (ref/unref)
  t->wake.data = t;
  t->io = io;
  io->writer = std::thread(writer_main, t);
  if (napi_add_env_cleanup_hook(env, cleanup_threads, t) == napi_ok) t->cleanup_hook = true;
  return nullptr;
}

// start(lengths: Uint32Array, onFrames, onWritable, onError, ioThreads?: boolean)
napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  Tap* t = unwrap_open(env, info, &argc, argv);
  if (!t) return nullptr;
  if (t->started) {
    napi_throw_error(env, nullptr, "tap addon: already started");
    return nullptr;
  }
  const char* lengths_message = "tap addon: lengths must be a Uint32Array of at least 256 entries";
  void* data;
  size_t length;
  if (!typed_array_data(env, argv[0], napi_uint32_array, lengths_message, &data, &length)) return nullptr;
  if (length < kMaxBatch) {
    napi_throw_type_error(env, nullptr, lengths_message);
    return nullptr;
  }
  for (int i = 1; i < 4; i++) {
    napi_valuetype vt;
    CHECK(napi_typeof(env, argv[i], &vt));
    if (vt != napi_function) {
      napi_throw_type_error(env, nullptr, "tap addon: callbacks must be functions");
      return nullptr;
    }
  }
  t->arena = static_cast<uint8_t*>(malloc(kArena));
  if (!t->arena) {
    throw_errno(env, ENOMEM, "malloc");
    return nullptr;
  }
  CHECK(napi_create_reference(env, argv[0], 1, &t->lengths_ref));
  t->lengths = static_cast<uint32_t*>(data);
  CHECK(napi_create_reference(env, argv[1], 1, &t->on_frames));
  CHECK(napi_create_reference(env, argv[2], 1, &t->on_writable));
  CHECK(napi_create_reference(env, argv[3], 1, &t->on_error));
  napi_value resource_name, resource;
  CHECK(napi_create_string_utf8(env, "TapDevice", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_async_init(env, resource, resource_name, &t->async_context));

  uv_loop_t* loop = nullptr;
  CHECK(napi_get_uv_event_loop(env, &loop));
  bool io_threads = false;
  if (argc >= 5) {
    napi_valuetype vt;
    CHECK(napi_typeof(env, argv[4], &vt));
    if (vt == napi_boolean) CHECK(napi_get_value_bool(env, argv[4], &io_threads));
  }
  int r = uv_poll_init(loop, &t->poll, t->fd);
  if (r < 0) {
    throw_errno(env, -r, "uv_poll_init");
    return nullptr;
  }
  t->poll.data = t;
  t->open_handles++;
  t->started = true;
  r = uv_poll_start(&t->poll, UV_READABLE, on_poll);
  if (r < 0) {
    throw_errno(env, -r, "uv_poll_start");
    return nullptr;
  }
  if (io_threads) return start_threads(env, t, loop);
  return nullptr;
}

// write(frame: Uint8Array, header?: Uint8Array): number of bytes written, or -errno
napi_value Write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Tap* t = unwrap_this(env, info, &argc, argv);
  if (!t) return nullptr;
  napi_value result;
  if (t->closed) {
    CHECK(napi_create_int32(env, -EBADF, &result));
    return result;
  }
  void* data;
  size_t length;
  if (!typed_array_data(env, argv[0], napi_uint8_array, "tap addon: write takes a Uint8Array", &data, &length)) return nullptr;
  void* header = nullptr;
  size_t header_length = 0;
  napi_valuetype vt = napi_undefined;
  if (argc >= 2) CHECK(napi_typeof(env, argv[1], &vt));
  if (vt != napi_undefined &&
      !typed_array_data(env, argv[1], napi_uint8_array, "tap addon: the header must be a Uint8Array", &header, &header_length)) {
    return nullptr;
  }
  if (t->io) {
    // Behind what the writer holds, never around it: an idle writer lets us write here and now,
    // otherwise the frame becomes a batch of its own (or waits, -EAGAIN, when all are in flight).
    bool idle = false;
    int index = free_tx_batch(t->io, &idle);
    if (index < 0 || (!idle && header_length + length > kTxBufferBytes)) {
      CHECK(napi_create_int32(env, -EAGAIN, &result));
      return result;
    }
    if (!idle) {
      TxBatch& batch = t->io->tx[index];  // ours until submitted
      if (header_length > 0) memcpy(batch.bytes, header, header_length);
      memcpy(batch.bytes + header_length, data, length);
      batch.lengths[0] = static_cast<uint32_t>(header_length + length);
      batch.count = 1;
      batch.used = header_length + length;
      pause_poll(t);
      submit_tx_batch(t->io);
      CHECK(napi_create_int32(env, static_cast<int32_t>(header_length + length), &result));
      return result;
    }
  }
  ssize_t n;
  if (header_length > 0) {
    // The tun driver takes one frame per write; writev joins the two pieces in the kernel.
    struct iovec iov[2] = {{header, header_length}, {data, length}};
    do {
      n = writev(t->fd, iov, 2);
    } while (n < 0 && errno == EINTR);
  } else {
    do {
      n = write(t->fd, data, length);
    } while (n < 0 && errno == EINTR);
  }
  CHECK(napi_create_int32(env, n < 0 ? -errno : static_cast<int32_t>(n), &result));
  return result;
}

// status[2] and status[3], when the caller's status has them: batches and frames handed to the writer.
void count_handoff(int32_t* status, size_t status_count, uint32_t frames) {
  if (status_count < 4) return;
  status[2]++;
  status[3] += static_cast<int32_t>(frames);
}

// writeBatch(frames: Uint8Array, lengths: Uint32Array, count: number, status: Int32Array): frames done
napi_value WriteBatch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Tap* t = unwrap_this(env, info, &argc, argv);
  if (!t) return nullptr;
  void* frames;
  size_t frames_length;
  void* lengths_data;
  size_t lengths_count;
  void* status_data;
  size_t status_count;
  uint32_t count = 0;
  if (argc < 4 ||
      !typed_array_data(env, argv[0], napi_uint8_array, "tap addon: writeBatch takes the frames as a Uint8Array", &frames, &frames_length) ||
      !typed_array_data(env, argv[1], napi_uint32_array, "tap addon: writeBatch takes the lengths as a Uint32Array", &lengths_data, &lengths_count) ||
      !typed_array_data(env, argv[3], napi_int32_array, "tap addon: writeBatch takes the status as an Int32Array", &status_data, &status_count)) {
    return nullptr;
  }
  CHECK(napi_get_value_uint32(env, argv[2], &count));
  if (count > lengths_count || status_count < 2) {
    napi_throw_range_error(env, nullptr, "tap addon: writeBatch count past the lengths, or status shorter than 2");
    return nullptr;
  }
  const uint32_t* lengths = static_cast<const uint32_t*>(lengths_data);
  int32_t* status = static_cast<int32_t*>(status_data);
  const uint8_t* at = static_cast<const uint8_t*>(frames);
  size_t left = frames_length;
  uint32_t done = 0;
  bool direct = false;  // with the writer thread: written here because it was idle
  if (t->closed) {
    status[0] += static_cast<int32_t>(count);
    status[1] = EBADF;
    done = count;
  } else if (t->io) {
    IoThreads* io = t->io;
    take_tx_failures(t, status);
    // The frames that lie inside `frames`; the rest are refused, as below.
    uint32_t valid = 0;
    size_t total = 0;
    while (valid < count && lengths[valid] <= frames_length - total) total += lengths[valid++];
    if (total > kTxBufferBytes || count > kMaxBatch) {
      napi_throw_range_error(env, nullptr, "tap addon: writeBatch larger than a send batch (512 KiB, 256 frames)");
      return nullptr;
    }
    bool idle = false;
    free_tx_batch(io, &idle);
    if (idle && valid == count && count <= kDirectWriteFrames) {
      // a few frames and nothing in flight: written below, on this thread, in order
      direct = true;
    } else if (valid > 0 && !hand_to_writer(t, static_cast<const uint8_t*>(frames), lengths, valid, total)) {
      // The ring is full: nothing taken, the caller keeps the frames and waits for onWritable
      // (wantWritable(true)), which comes when the writer frees a batch.
      napi_value result;
      CHECK(napi_create_uint32(env, 0, &result));
      return result;
    } else {
      if (valid < count) {
        status[0] += static_cast<int32_t>(count - valid);
        status[1] = EINVAL;
      }
      if (valid > 0) count_handoff(status, status_count, valid);
      done = count;
    }
  }
  for (; done < count; done++) {
    size_t length = lengths[done];
    if (length > left) {  // lengths that do not fit the frames: refuse the rest, never read past
      status[0] += static_cast<int32_t>(count - done);
      status[1] = EINVAL;
      done = count;
      break;
    }
    ssize_t n;
    do {
      n = write(t->fd, at, length);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (direct) {
        // The device is full: the rest goes to the writer, which waits for POLLOUT (a free batch:
        // the writer was idle and only this thread submits; all inside `frames`, checked above).
        size_t rest = 0;
        for (uint32_t i = done; i < count; i++) rest += lengths[i];
        hand_to_writer(t, at, lengths + done, count - done, rest);
        count_handoff(status, status_count, count - done);
        done = count;
      }
      break;
    }
    if (n < 0) {
      status[0]++;
      status[1] = errno;
    }
    at += length;
    left -= length;
  }
  napi_value result;
  CHECK(napi_create_uint32(env, done, &result));
  return result;
}

// takeTxFailures(status: Int32Array): frames the writer thread could not write since the last
// writeBatch, added to status[0] (the last errno in status[1]). For close(), after the writer is joined.
napi_value TakeTxFailures(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Tap* t = unwrap_this(env, info, &argc, argv);
  if (!t) return nullptr;
  void* status_data;
  size_t status_count;
  if (argc < 1 || !typed_array_data(env, argv[0], napi_int32_array, "tap addon: takeTxFailures takes an Int32Array", &status_data, &status_count)) return nullptr;
  if (status_count < 2) {
    napi_throw_range_error(env, nullptr, "tap addon: status shorter than 2");
    return nullptr;
  }
  take_tx_failures(t, static_cast<int32_t*>(status_data));
  return nullptr;
}

// txRoom(): with the writer thread, the frames writeBatch can take now without parking them (the
// free send batches, kMaxBatch frames each, and what still fits the waiting one); without, -1 (no
// limit of ours: the kernel's EAGAIN is).
napi_value TxRoom(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Tap* t = unwrap_this(env, info, &argc, nullptr);
  if (!t) return nullptr;
  int32_t room = -1;
  if (t->io && !t->closed) {
    IoThreads* io = t->io;
    std::lock_guard<std::mutex> lock(io->tx_mutex);
    room = static_cast<int32_t>((kTxBuffers - io->tx_pending) * kMaxBatch);
    if (io->tx_pending >= 2) room += static_cast<int32_t>(kMaxBatch - io->tx[(io->tx_head + io->tx_pending - 1) % kTxBuffers].count);
  }
  napi_value result;
  CHECK(napi_create_int32(env, room, &result));
  return result;
}

napi_value ReadNow(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Tap* t = unwrap_this(env, info, &argc, nullptr);
  if (t && t->started && !t->closed) {
    read_batch(t);
  }
  return nullptr;
}

napi_value WantWritable(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Tap* t = unwrap_this(env, info, &argc, argv);
  if (!t || t->closed || !t->started) return nullptr;
  bool on = false;
  CHECK(napi_get_value_bool(env, argv[0], &on));
  if (on == t->want_writable) return nullptr;
  t->want_writable = on;
  if (t->io) {
    t->io->want_writable.store(on);
    // A batch may have been freed before the flag was up: look once more, on the loop.
    if (on) uv_async_send(&t->wake);
    return nullptr;
  }
  int r = uv_poll_start(&t->poll, UV_READABLE | (on ? UV_WRITABLE : 0), on_poll);
  if (r < 0) throw_errno(env, -r, "uv_poll_start");
  return nullptr;
}

// ref()/unref(): whether the started, open device keeps the event loop alive.
napi_value set_keeps_loop_alive(napi_env env, napi_callback_info info, bool keep) {
  size_t argc = 0;
  Tap* t = unwrap_this(env, info, &argc, nullptr);
  if (!t || !t->started || t->closed) return nullptr;
  t->keep_alive = keep;
  update_refs(t);
  return nullptr;
}

napi_value Ref(napi_env env, napi_callback_info info) { return set_keeps_loop_alive(env, info, true); }

napi_value Unref(napi_env env, napi_callback_info info) { return set_keeps_loop_alive(env, info, false); }

napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Tap* t = unwrap_this(env, info, &argc, nullptr);
  if (t) close_tap(t, false);
  return nullptr;
}

// configure(address: number (-1: leave), prefixLength, mtu (-1: leave), up (-1 leave, 0 down, 1 up))
napi_value Configure(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Tap* t = unwrap_open(env, info, &argc, argv);
  if (!t) return nullptr;
  double address;
  int32_t prefix, mtu, up;
  CHECK(napi_get_value_double(env, argv[0], &address));
  CHECK(napi_get_value_int32(env, argv[1], &prefix));
  CHECK(napi_get_value_int32(env, argv[2], &mtu));
  CHECK(napi_get_value_int32(env, argv[3], &up));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (mtu >= 0) {
    ifr.ifr_mtu = mtu;
    if (ifreq_ioctl(t, SIOCSIFMTU, &ifr) < 0) {
      throw_errno(env, errno, "ioctl(SIOCSIFMTU)");
      return nullptr;
    }
  }
  if (address >= 0) {
    if (prefix < 0 || prefix > 32) {
      throw_errno(env, EINVAL, "prefix length");
      return nullptr;
    }
    memset(&ifr, 0, sizeof ifr);
    struct sockaddr_in* sin = reinterpret_cast<struct sockaddr_in*>(&ifr.ifr_addr);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(static_cast<uint32_t>(address));
    if (ifreq_ioctl(t, SIOCSIFADDR, &ifr) < 0) {
      throw_errno(env, errno, "ioctl(SIOCSIFADDR)");
      return nullptr;
    }
    memset(&ifr, 0, sizeof ifr);
    sin = reinterpret_cast<struct sockaddr_in*>(&ifr.ifr_netmask);
    sin->sin_family = AF_INET;
    uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
    sin->sin_addr.s_addr = htonl(mask);
    if (ifreq_ioctl(t, SIOCSIFNETMASK, &ifr) < 0) {
      throw_errno(env, errno, "ioctl(SIOCSIFNETMASK)");
      return nullptr;
    }
  }
  if (up >= 0) {
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_ioctl(t, SIOCGIFFLAGS, &ifr) < 0) {
      throw_errno(env, errno, "ioctl(SIOCGIFFLAGS)");
      return nullptr;
    }
    if (up) ifr.ifr_flags |= IFF_UP;
    else ifr.ifr_flags &= ~IFF_UP;
    if (ifreq_ioctl(t, SIOCSIFFLAGS, &ifr) < 0) {
      throw_errno(env, errno, "ioctl(SIOCSIFFLAGS)");
      return nullptr;
    }
  }
  return nullptr;
}

napi_value HostMac(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Tap* t = unwrap_open(env, info, &argc, nullptr);
  if (!t) return nullptr;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ifreq_ioctl(t, SIOCGIFHWADDR, &ifr) < 0) {
    throw_errno(env, errno, "ioctl(SIOCGIFHWADDR)");
    return nullptr;
  }
  void* data;
  napi_value buffer, array;
  CHECK(napi_create_arraybuffer(env, 6, &data, &buffer));
  memcpy(data, ifr.ifr_hwaddr.sa_data, 6);
  CHECK(napi_create_typedarray(env, napi_uint8_array, 6, buffer, 0, &array));
  return array;
}

// The virtio-net header mode (IFF_VNET_HDR is already set): the header's length, then what we
// can take from the kernel. TUN_F_CSUM: frames may come with the checksum left partial
// (VIRTIO_NET_HDR_F_NEEDS_CSUM); TUN_F_TSO4 and TUN_F_TSO6: TCP/IPv4 and TCP/IPv6 frames may come
// unsegmented, up to 64 KB, with gso_size saying how the kernel would have cut them. The kernel takes the same from us
// without asking: what we write is checked against the header (csum_start, gso_type) instead.
int enable_offloads(int fd, int vnet_header_length, const char** step) {
  *step = "ioctl(TUNSETVNETHDRSZ)";
  if (ioctl(fd, TUNSETVNETHDRSZ, &vnet_header_length) < 0) return errno;
  *step = "ioctl(TUNSETOFFLOAD)";
  unsigned long offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) return errno;
  return 0;
}

// Opens the device, inside `netns` when given. Returns an errno and the failing step.
int open_device(Tap* t, const char* name, const char* netns, int vnet_header_length, bool napi, const char** step) {
  int home = -1, target = -1, err = 0;
  if (netns) {
    char path[512];
    snprintf(path, sizeof path, "/run/netns/%s", netns);
    // The step names the real path (static: the caller reads it after we return; one thread opens).
    static char open_step[sizeof path + 8];
    snprintf(open_step, sizeof open_step, "open(%s)", path);
    *step = open_step;
    target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0) return errno;
    *step = "open(/proc/thread-self/ns/net)";
    home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) {
      err = errno;
      close(target);
      return err;
    }
    *step = "setns(CLONE_NEWNET)";
    if (setns(target, CLONE_NEWNET) < 0) {
      err = errno;
      close(target);
      close(home);
      return err;
    }
    close(target);
  }

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  *step = "open(/dev/net/tun)";
  t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (t->fd < 0) {
    err = errno;
  } else {
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_header_length > 0 ? IFF_VNET_HDR : 0) | (napi ? IFF_NAPI : 0);
    memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
    *step = "ioctl(TUNSETIFF)";
    if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
      err = errno;
    } else if (vnet_header_length > 0 && (err = enable_offloads(t->fd, vnet_header_length, step)) != 0) {
      // err set: the device goes away with the fd
    } else {
      memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ);
      t->ifname[IFNAMSIZ - 1] = 0;
      *step = "socket(AF_INET)";
      t->ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (t->ctl < 0) err = errno;
    }
  }

  if (netns) {
    if (setns(home, CLONE_NEWNET) < 0) {
      // Carrying on in the wrong namespace would put every later socket of this process
      // there: stop instead.
      fprintf(stderr, "tap addon: cannot return to the original network namespace: %s\n", strerror(errno));
      abort();
    }
    close(home);
  }
  if (err) {
    if (t->fd >= 0) close(t->fd);
    if (t->ctl >= 0) close(t->ctl);
    t->fd = t->ctl = -1;
  }
  return err;
}

napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char name[IFNAMSIZ + 1] = {0};
  size_t name_length = 0;
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_length));
  if (name_length == 0 || name_length >= IFNAMSIZ) {
    throw_errno(env, EINVAL, "interface name");
    return nullptr;
  }
  char netns[256] = {0};
  bool has_netns = false;
  napi_valuetype vt;
  CHECK(napi_typeof(env, argv[1], &vt));
  if (vt == napi_string) {
    size_t ns_length = 0;
    CHECK(napi_get_value_string_utf8(env, argv[1], netns, sizeof netns, &ns_length));
    if (ns_length == 0 || ns_length >= sizeof netns - 1 || strchr(netns, '/')) {
      throw_errno(env, EINVAL, "netns name");
      return nullptr;
    }
    has_netns = true;
  }
  int32_t vnet_header_length = 0;
  if (argc >= 3) {
    CHECK(napi_typeof(env, argv[2], &vt));
    if (vt == napi_number) CHECK(napi_get_value_int32(env, argv[2], &vnet_header_length));
  }
  if (vnet_header_length != 0 && vnet_header_length != static_cast<int32_t>(sizeof(struct virtio_net_hdr)) &&
      vnet_header_length != static_cast<int32_t>(sizeof(struct virtio_net_hdr_mrg_rxbuf))) {
    throw_errno(env, EINVAL, "vnet header length (10 or 12)");
    return nullptr;
  }
  bool use_napi = false;
  if (argc >= 4) {
    CHECK(napi_typeof(env, argv[3], &vt));
    if (vt == napi_boolean) CHECK(napi_get_value_bool(env, argv[3], &use_napi));
  }

  Tap* t = new Tap();
  t->env = env;
  const char* step = "";
  int err = open_device(t, name, has_netns ? netns : nullptr, vnet_header_length, use_napi, &step);
  if (err) {
    delete t;
    throw_errno(env, err, step);
    return nullptr;
  }

  napi_value handle, fn, ifname_value;
  CHECK(napi_create_object(env, &handle));
  struct Method {
    const char* name;
    napi_callback cb;
  } methods[] = {
      {"start", Start},   {"write", Write}, {"writeBatch", WriteBatch}, {"readNow", ReadNow}, {"wantWritable", WantWritable}, {"configure", Configure},
      {"hostMac", HostMac}, {"takeTxFailures", TakeTxFailures}, {"txRoom", TxRoom}, {"ref", Ref},   {"unref", Unref},               {"close", Close},
  };
  for (const Method& m : methods) {
    CHECK(napi_create_function(env, m.name, NAPI_AUTO_LENGTH, m.cb, nullptr, &fn));
    CHECK(napi_set_named_property(env, handle, m.name, fn));
  }
  CHECK(napi_create_string_utf8(env, t->ifname, NAPI_AUTO_LENGTH, &ifname_value));
  CHECK(napi_set_named_property(env, handle, "ifname", ifname_value));
  if (napi_wrap(env, handle, t, finalize, nullptr, nullptr) != napi_ok) {
    close(t->fd);
    close(t->ctl);
    delete t;
    napi_throw_error(env, nullptr, "tap addon: napi_wrap failed");
    return nullptr;
  }
  return handle;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn, batch;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, Open, nullptr, &fn);
  napi_set_named_property(env, exports, "open", fn);
  napi_create_uint32(env, kMaxBatch, &batch);
  napi_set_named_property(env, exports, "maxBatch", batch);
  return exports;
}
