/* Reads the segment the way ntpd/ntpsec's refclock_shm.c (and gpsd's shm_query) do, as
 * fast as it can: skip if valid == 0; count, fence, copy, valid = 0, fence; mode 1 and
 * count moved -> clash (sample dropped). Every accepted sample must have clock - receive
 * equal to the constant the writer keeps, and USec == NSec / 1000; anything else is torn.
 *
 * That order has a hole no writer can close: a write that starts between the reader's
 * valid check and its count read leaves count odd and unchanged across a copy that falls
 * inside the field stores. Such a copy carries valid == 0 (the writer clears valid before
 * the first count++), so torn samples are split into `tornMidWrite` (odd count, copied
 * valid 0: the reader's race) and `tornUnexplained` (anything else: a writer bug).
 * Mode `checked` also drops a copy whose valid is 0, as chrony does: nothing torn then.
 * `reads` counts the copies (valid was 1); `notValid` the polls that found valid 0.
 * It stops after READS copies, or after TIMEOUT seconds whatever it has (the caller checks
 * the count, so a starved run fails instead of proving nothing).
 * Usage: ntpd_reader ntpd|checked UNIT READS TIMEOUT DIFF_SEC DIFF_NSEC; prints JSON. */
#include "shm_time.h"

int main(int argc, char **argv) {
  if (argc != 7 || (strcmp(argv[1], "ntpd") != 0 && strcmp(argv[1], "checked") != 0)) {
    fprintf(stderr, "usage: %s ntpd|checked UNIT READS TIMEOUT DIFF_SEC DIFF_NSEC\n", argv[0]);
    return 2;
  }
  const int checked = strcmp(argv[1], "checked") == 0;
  volatile struct shmTime *shm = shm_attach(atoi(argv[2]), 0, 0);
  const long long target_reads = atoll(argv[3]);
  const int64_t timeout = (int64_t)(atof(argv[4]) * 1e9);
  const int64_t expected = (int64_t)atoll(argv[5]) * 1000000000 + atoll(argv[6]);

  /* Start when the writer is seen writing, so every read overlaps it. */
  const int initial = shm->count;
  const int64_t wait_start = now_ns();
  while (shm->count == initial) {
    if (now_ns() - wait_start > timeout) {
      fprintf(stderr, "no writer within %s s\n", argv[4]);
      return 1;
    }
  }

  long long reads = 0, not_valid = 0, clashes = 0, bad_mode = 0, mid_write = 0, accepted = 0;
  long long torn_mid_write = 0, torn_unexplained = 0;
  char first_torn[200] = "";
  const int64_t start = now_ns();
  long long polls = 0;
  while (reads < target_reads && (++polls % 4096 != 0 || now_ns() - start < timeout)) {
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
    if (checked && copy.valid == 0) {
      mid_write++;
      continue;
    }
    accepted++;
    const int64_t clock = (int64_t)copy.clockTimeStampSec * 1000000000 + copy.clockTimeStampNSec;
    const int64_t receive = (int64_t)copy.receiveTimeStampSec * 1000000000 + copy.receiveTimeStampNSec;
    const int usec_ok = copy.clockTimeStampUSec == (int)(copy.clockTimeStampNSec / 1000) &&
                        copy.receiveTimeStampUSec == (int)(copy.receiveTimeStampNSec / 1000);
    if (clock - receive != expected || !usec_ok) {
      const int race = (count & 1) != 0 && copy.valid == 0;
      if (race) {
        torn_mid_write++;
      } else {
        torn_unexplained++;
      }
      if (first_torn[0] == '\0' || !race) {
        snprintf(first_torn, sizeof first_torn, "count %d valid %d clock %lld.%09u receive %lld.%09u usec %d/%d", count,
                 copy.valid, (long long)copy.clockTimeStampSec, copy.clockTimeStampNSec,
                 (long long)copy.receiveTimeStampSec, copy.receiveTimeStampNSec, copy.clockTimeStampUSec,
                 copy.receiveTimeStampUSec);
      }
    }
  }
  printf("{\"reads\":%lld,\"notValid\":%lld,\"clashes\":%lld,\"badMode\":%lld,\"midWrite\":%lld,\"accepted\":%lld,"
         "\"tornMidWrite\":%lld,\"tornUnexplained\":%lld,\"firstTorn\":\"%s\",\"ns\":%lld}\n",
         reads, not_valid, clashes, bad_mode, mid_write, accepted, torn_mid_write, torn_unexplained, first_torn,
         (long long)(now_ns() - start));
  return 0;
}
