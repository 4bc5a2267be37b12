/* Reads the segment the way ntpd/ntpsec's refclock_shm.c does, as fast as it can:
 * skip if valid == 0; count, fence, copy, valid = 0, fence; mode 1 and count moved ->
 * clash (sample dropped). Every accepted sample must have clock - receive equal to the
 * constant the writer keeps, and USec == NSec / 1000; anything else is torn.
 * `reads` counts the copies (valid was 1); `notValid` the polls that found valid 0.
 * Usage: ntpd_reader UNIT SECONDS MAX_READS DIFF_SEC DIFF_NSEC; prints one JSON line. */
#include "shm_time.h"

#include <stdint.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s UNIT SECONDS MAX_READS DIFF_SEC DIFF_NSEC\n", argv[0]);
    return 2;
  }
  volatile struct shmTime *shm = shm_attach(atoi(argv[1]), 0, 0);
  const int64_t budget = (int64_t)(atof(argv[2]) * 1e9);
  const long long max_reads = atoll(argv[3]);
  const int64_t expected = (int64_t)atoll(argv[4]) * 1000000000 + atoll(argv[5]);

  /* Start the clock when the writer is seen writing, so the whole budget overlaps it. */
  const int initial = shm->count;
  const int64_t wait_start = now_ns();
  while (shm->count == initial) {
    if (now_ns() - wait_start > 10 * (int64_t)1000000000) {
      fprintf(stderr, "no writer within 10 s\n");
      return 1;
    }
  }

  long long reads = 0, not_valid = 0, clashes = 0, bad_mode = 0, accepted = 0, torn = 0;
  char first_torn[200] = "";
  const int64_t start = now_ns();
  long long polls = 0;
  while (reads < max_reads && (++polls % 4096 != 0 || now_ns() - start < budget)) {
    if (shm->valid == 0) {
      not_valid++;
      continue;
    }
    reads++;
    struct shmTime copy;
    const int count = shm->count;
    memory_barrier();
    memcpy(&copy, (const void *)shm, sizeof copy);
    shm->valid = 0;
    memory_barrier();
    if (copy.mode != 1) {
      bad_mode++;
      continue;
    }
    if (count != shm->count) {
      clashes++;
      continue;
    }
    accepted++;
    const int64_t clock = (int64_t)copy.clockTimeStampSec * 1000000000 + copy.clockTimeStampNSec;
    const int64_t receive = (int64_t)copy.receiveTimeStampSec * 1000000000 + copy.receiveTimeStampNSec;
    const int usec_ok = copy.clockTimeStampUSec == (int)(copy.clockTimeStampNSec / 1000) &&
                        copy.receiveTimeStampUSec == (int)(copy.receiveTimeStampNSec / 1000);
    if (clock - receive != expected || !usec_ok) {
      if (torn == 0) {
        snprintf(first_torn, sizeof first_torn, "clock %lld.%09u receive %lld.%09u usec %d/%d",
                 (long long)copy.clockTimeStampSec, copy.clockTimeStampNSec,
                 (long long)copy.receiveTimeStampSec, copy.receiveTimeStampNSec,
                 copy.clockTimeStampUSec, copy.receiveTimeStampUSec);
      }
      torn++;
    }
  }
  printf("{\"reads\":%lld,\"notValid\":%lld,\"clashes\":%lld,\"badMode\":%lld,\"accepted\":%lld,"
         "\"torn\":%lld,\"firstTorn\":\"%s\",\"ns\":%lld}\n",
         reads, not_valid, clashes, bad_mode, accepted, torn, first_torn, (long long)(now_ns() - start));
  return 0;
}
