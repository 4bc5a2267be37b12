/* The anchor of `npm run bench:gps`: what a C reader (gpsd's way: blocking read() on the
 * tty, CLOCK_REALTIME right after it returns) sees. Reads `count` lines from `path` and
 * prints each line's stamp as "sec nsec" once done, so printing never delays a read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s <tty> <count>\n", argv[0]);
    return 2;
  }
  long count = strtol(argv[2], NULL, 10);
  struct timespec *stamps = calloc((size_t)count, sizeof *stamps);
  int fd = open(argv[1], O_RDONLY | O_NOCTTY);
  if (fd < 0 || stamps == NULL) {
    perror(argv[1]);
    return 1;
  }
  fprintf(stderr, "ready\n");
  char buffer[4096];
  long lines = 0;
  while (lines < count) {
    ssize_t got = read(fd, buffer, sizeof buffer);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t i = 0; i < got && lines < count; i++) {
      if (buffer[i] == '\n') stamps[lines++] = now;
    }
  }
  for (long i = 0; i < lines; i++) printf("%lld %ld\n", (long long)stamps[i].tv_sec, stamps[i].tv_nsec);
  return lines == count ? 0 : 1;
}
