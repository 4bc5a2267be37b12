/* The SOCK anchor for `npm run bench`: what gpsd's timehint.c does per sample for chrony
 * (one struct sock_sample, one send() on a connected Unix datagram socket), in a tight
 * loop, to a reader that drains the socket in a second process. Linux queues only
 * net.unix.max_dgram_qlen datagrams (10 by default): sends go in timed batches of
 * BATCH, with an untimed pause between for the reader to empty the queue, so every
 * timed send is a delivered one.
 * Usage: sock_send_loop drain PATH      (binds PATH, receives until SIGTERM, prints the count)
 *        sock_send_loop send PATH SECONDS (prints one JSON line: sends, ns, errors) */
#include "sock_sample.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BATCH 8

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int64_t now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC_RAW, &now);
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static struct sockaddr_un address_of(const char *path) {
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  strncpy(address.sun_path, path, sizeof address.sun_path - 1);
  return address;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  struct sockaddr_un address = address_of(argv[2]);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (strcmp(argv[1], "drain") == 0) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGTERM, &action, NULL);
    unlink(argv[2]);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) return 1;
    printf("ready\n");
    fflush(stdout);
    long long received = 0;
    struct sock_sample sample;
    while (!stop) {
      if (recv(fd, &sample, sizeof sample, 0) > 0) received++;
    }
    unlink(argv[2]);
    printf("%lld\n", received);
    return 0;
  }
  if (argc < 4 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) return 1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const int64_t budget = (int64_t)(atof(argv[3]) * 1e9);
  struct timeval receive;
  struct sock_sample sample;
  const struct timespec pause = {0, 200000};
  int64_t sends = 0, errors = 0, elapsed = 0;
  do {
    const int64_t start = now_ns();
    for (int i = 0; i < BATCH; ++i) {
      gettimeofday(&receive, NULL);
      memset(&sample, 0, sizeof sample);
      sample.tv = receive;
      sample.offset = -1.0;
      sample.magic = SOCK_MAGIC;
      if (send(fd, &sample, sizeof sample, 0) != (ssize_t)sizeof sample) errors++;
    }
    elapsed += now_ns() - start;
    sends += BATCH;
    nanosleep(&pause, NULL);
  } while (elapsed < budget);
  printf("{\"sends\":%lld,\"ns\":%lld,\"errors\":%lld}\n", (long long)sends, (long long)elapsed, (long long)errors);
  return 0;
}
