/* The SHM refclock segment as ntpd, ntpsec and gpsd declare it, written independently
 * of native/ so that the C programs of the tests and the benchmark check the addon
 * against the reference rather than against itself. */
#ifndef HTNTP_TEST_SHM_TIME_H
#define HTNTP_TEST_SHM_TIME_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>

struct shmTime {
  int mode;
  volatile int count;
  time_t clockTimeStampSec;
  int clockTimeStampUSec;
  time_t receiveTimeStampSec;
  int receiveTimeStampUSec;
  int leap;
  int precision;
  int nsamples;
  volatile int valid;
  unsigned clockTimeStampNSec;
  unsigned receiveTimeStampNSec;
  int dummy[8];
};

#define NTPD_BASE 0x4e545030

/* For bounding loops by time: CLOCK_MONOTONIC_RAW in nanoseconds. */
static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void memory_barrier(void) { atomic_thread_fence(memory_order_seq_cst); }

/* Attaches to the unit's segment; creates it (0666) when `create` is set, like gpsd. */
static inline volatile struct shmTime *shm_attach(int unit, int create, int read_only) {
  int id = shmget((key_t)(NTPD_BASE + unit), sizeof(struct shmTime), create ? IPC_CREAT | 0666 : 0);
  if (id < 0) {
    fprintf(stderr, "shmget unit %d: %s\n", unit, strerror(errno));
    exit(2);
  }
  void *address = shmat(id, NULL, read_only ? SHM_RDONLY : 0);
  if (address == (void *)-1) {
    fprintf(stderr, "shmat unit %d: %s\n", unit, strerror(errno));
    exit(2);
  }
  return (volatile struct shmTime *)address;
}

/* gpsd's ntp_write (gpsd/ntpshmwrite.c), minus logging. */
static inline void gpsd_ntp_write(volatile struct shmTime *shm, const struct timespec *clock,
                                  const struct timespec *receive, int leap, int precision) {
  shm->valid = 0;
  shm->count++;
  memory_barrier();
  shm->clockTimeStampSec = clock->tv_sec;
  shm->clockTimeStampUSec = (int)(clock->tv_nsec / 1000);
  shm->clockTimeStampNSec = (unsigned)clock->tv_nsec;
  shm->receiveTimeStampSec = receive->tv_sec;
  shm->receiveTimeStampUSec = (int)(receive->tv_nsec / 1000);
  shm->receiveTimeStampNSec = (unsigned)receive->tv_nsec;
  shm->leap = leap;
  shm->precision = precision;
  memory_barrier();
  shm->count++;
  memory_barrier();
  shm->valid = 1;
}

#endif
