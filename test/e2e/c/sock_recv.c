/* A SOCK refclock reader the way chronyd is one: binds a Unix datagram socket at
 * argv[1] (mode argv[2], octal), prints "ready", then one JSON line per datagram, decoded
 * with the reference struct, until argv[3] datagrams (0 = until SIGTERM). The socket file
 * is removed on exit, as chronyd removes its own. Each line also carries the datagram's
 * bytes in hex, for readers that parse it their own way (ntpd-rs). */
#include "sock_sample.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: sock_recv PATH MODE COUNT\n");
    return 2;
  }
  const char *path = argv[1];
  long mode = strtol(argv[2], NULL, 8);
  long count = strtol(argv[3], NULL, 10);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal; /* no SA_RESTART: recv returns EINTR */
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  strncpy(address.sun_path, path, sizeof address.sun_path - 1);
  unlink(path);
  if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || chmod(path, (mode_t)mode) != 0) {
    fprintf(stderr, "bind %s: %s\n", path, strerror(errno));
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (long received = 0; !stop && (count == 0 || received < count);) {
    unsigned char buffer[256];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    struct sock_sample sample;
    memset(&sample, 0, sizeof sample);
    memcpy(&sample, buffer, (size_t)n < sizeof sample ? (size_t)n : sizeof sample);
    char hex[2 * sizeof buffer + 1];
    for (ssize_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", buffer[i]);
    hex[2 * n] = '\0';
    printf("{\"bytes\":%zd,\"sec\":%lld,\"usec\":%ld,\"offset\":%.17g,"
           "\"pulse\":%d,\"leap\":%d,\"pad\":%d,\"magic\":%d,\"hex\":\"%s\"}\n",
           n, (long long)sample.tv.tv_sec, (long)sample.tv.tv_usec, sample.offset, sample.pulse, sample.leap,
           sample._pad, sample.magic, hex);
    fflush(stdout);
    received++;
  }
  unlink(path);
  close(fd);
  return 0;
}
