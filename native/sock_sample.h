// chrony's SOCK reference clock: one datagram per sample to the Unix datagram socket
// chronyd creates for `refclock SOCK <path>` (chrony refclock_sock.c; gpsd's timehint.c
// writes the same). ntpd-rs reads the same format. Free of any Node API.
#pragma once

#include <sys/time.h>

#include <cstddef>
#include <cstdint>

#include "shm_segment.h"

namespace htntp {

// Declared as chrony declares it, with this platform's own struct timeval: 40 bytes
// where time_t is 64-bit, 32 where it is 32-bit. chronyd drops a datagram of another
// size or magic without a word, so the layout is right by construction or not at all.
struct sock_sample {
  struct timeval tv;  // system time (CLOCK_REALTIME) of the measurement
  double offset;      // true time - system time, seconds
  int pulse;          // 0: a full time sample, not a PPS edge
  int leap;           // 0 none, 1 insert, 2 delete
  int _pad;
  int magic;
};

constexpr int kSockMagic = 0x534f434b;  // "SOCK"

// The same sample laid out as a 64-bit time_t platform lays it out, whatever this one's
// time_t: 40 bytes. ntpd-rs reads exactly 40 bytes and drops the 32 of a 32-bit build
// (chrony 4.4 and later take either size).
struct sock_sample_wide {
  int64_t tv_sec;
  int64_t tv_usec;
  double offset;
  int32_t pulse;
  int32_t leap;
  int32_t _pad;
  int32_t magic;
};

sock_sample_wide widenSockSample(const sock_sample& sample);

// offset is taken against tv as sent (receive time truncated to microseconds), so the
// truncation never biases the sample.
sock_sample makeSockSample(const Timespec& clock, const Timespec& receive, int leap);

// A client end connected to one socket path. Non-blocking: a reader that stops
// reading costs a dropped sample (EAGAIN), never a stalled feeder.
class SockClient {
 public:
  SockClient() = default;
  ~SockClient();
  SockClient(const SockClient&) = delete;
  SockClient& operator=(const SockClient&) = delete;

  // A new socket connected to `path` (the previous one closed first). On failure the
  // client is left closed: ENOENT no socket, ECONNREFUSED nobody reading it,
  // EACCES no write permission, ENAMETOOLONG a path longer than sun_path.
  SysError connect(const char* path);
  // One datagram. ECONNREFUSED: the reader went away (chronyd stopped or restarted).
  SysError send(const sock_sample& sample) const { return sendBytes(&sample, sizeof sample); }
  SysError send(const sock_sample_wide& sample) const { return sendBytes(&sample, sizeof sample); }
  void close();
  bool connected() const { return fd_ >= 0; }

 private:
  SysError sendBytes(const void* bytes, size_t size) const;
  int fd_ = -1;
};

}  // namespace htntp
