#include "sock_sample.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace htntp {

static_assert(sizeof(sock_sample) == sizeof(struct timeval) + 24, "sock_sample must match chrony's layout");
static_assert(sizeof(sock_sample_wide) == 40 && offsetof(sock_sample_wide, offset) == 16 &&
                  offsetof(sock_sample_wide, magic) == 36,
              "sock_sample_wide must be the 64-bit time_t layout");

sock_sample_wide widenSockSample(const sock_sample& sample) {
  sock_sample_wide wide;
  std::memset(&wide, 0, sizeof wide);
  wide.tv_sec = static_cast<int64_t>(sample.tv.tv_sec);
  wide.tv_usec = static_cast<int64_t>(sample.tv.tv_usec);
  wide.offset = sample.offset;
  wide.pulse = sample.pulse;
  wide.leap = sample.leap;
  wide.magic = sample.magic;
  return wide;
}

sock_sample makeSockSample(const Timespec& clock, const Timespec& receive, int leap) {
  sock_sample sample;
  std::memset(&sample, 0, sizeof sample);
  sample.tv.tv_sec = static_cast<time_t>(receive.sec);
  sample.tv.tv_usec = static_cast<suseconds_t>(receive.nsec / 1000);
  // Whole seconds and nanoseconds apart first: a double keeps ns only near zero.
  sample.offset = static_cast<double>(clock.sec - receive.sec) +
                  static_cast<double>(clock.nsec - static_cast<int64_t>(sample.tv.tv_usec) * 1000) / 1e9;
  sample.pulse = 0;
  sample.leap = leap;
  sample.magic = kSockMagic;
  return sample;
}

SockClient::~SockClient() { close(); }

void SockClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

SysError SockClient::connect(const char* path) {
  close();
  sockaddr_un address;
  std::memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  const size_t length = std::strlen(path);
  if (length == 0 || length >= sizeof address.sun_path) return SysError{ENAMETOOLONG, "connect"};
  std::memcpy(address.sun_path, path, length + 1);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return SysError{errno, "socket"};
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    const int err = errno;
    ::close(fd);
    return SysError{err, "fcntl"};
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int err = errno;
    ::close(fd);
    return SysError{err, "connect"};
  }
  fd_ = fd;
  return SysError{};
}

SysError SockClient::sendBytes(const void* bytes, size_t size) const {
  if (fd_ < 0) return SysError{ENOTCONN, "send"};
#ifdef MSG_NOSIGNAL
  const int flags = MSG_NOSIGNAL;
#else
  const int flags = 0;
#endif
  ssize_t sent;
  do {
    sent = ::send(fd_, bytes, size, flags);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return SysError{errno, "send"};
  // A datagram goes whole or not at all; anything else would be a truncated sample.
  if (static_cast<size_t>(sent) != size) return SysError{EMSGSIZE, "send"};
  return SysError{};
}

}  // namespace htntp
