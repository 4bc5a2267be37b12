/* The anchor for `npm run bench`: gpsd's ntp_write in a tight loop, each sample with a
 * fresh CLOCK_REALTIME receive time (what NtpdShm#update() does without receiveTime),
 * and a consistent non-consuming read loop (what NtpdShm#snapshot() does).
 * Usage: gpsd_write_loop UNIT SECONDS_PER_LOOP; prints one JSON line. */
#include "shm_time.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s UNIT SECONDS\n", argv[0]);
    return 2;
  }
  const int unit = atoi(argv[1]);
  const int64_t budget = (int64_t)(atof(argv[2]) * 1e9);
  volatile struct shmTime *shm = shm_attach(unit, 1, 0);
  shm->mode = 1;

  const struct timespec clock = {1700000000, 123456789};
  struct timespec receive;
  int64_t writes = 0;
  const int64_t write_start = now_ns();
  int64_t write_ns;
  do {
    for (int i = 0; i < 10000; ++i) {
      clock_gettime(CLOCK_REALTIME, &receive);
      gpsd_ntp_write(shm, &clock, &receive, 0, -20);
    }
    writes += 10000;
  } while ((write_ns = now_ns() - write_start) < budget);

  struct shmTime copy;
  int64_t reads = 0;
  int64_t sum = 0; /* keeps the copies observable */
  const int64_t read_start = now_ns();
  int64_t read_ns;
  do {
    for (int i = 0; i < 10000; ++i) {
      int before, after;
      do {
        before = shm->count;
        memory_barrier();
        memcpy(&copy, (const void *)shm, sizeof copy);
        memory_barrier();
        after = shm->count;
      } while (before != after);
      sum += copy.clockTimeStampNSec;
    }
    reads += 10000;
  } while ((read_ns = now_ns() - read_start) < budget);

  printf("{\"writes\":%lld,\"writeNs\":%lld,\"reads\":%lld,\"readNs\":%lld,\"checksum\":%lld}\n",
         (long long)writes, (long long)write_ns, (long long)reads, (long long)read_ns, (long long)(sum & 1));
  return 0;
}
