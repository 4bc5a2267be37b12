/* An independent writer: one sample with gpsd's ntp_write into an existing segment.
 * Usage: shm_write UNIT CLOCK_SEC CLOCK_NSEC RECEIVE_SEC RECEIVE_NSEC LEAP PRECISION */
#include "shm_time.h"

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s UNIT CLOCK_SEC CLOCK_NSEC RECEIVE_SEC RECEIVE_NSEC LEAP PRECISION\n", argv[0]);
    return 2;
  }
  volatile struct shmTime *shm = shm_attach(atoi(argv[1]), 0, 0);
  const struct timespec clock = {(time_t)atoll(argv[2]), atol(argv[3])};
  const struct timespec receive = {(time_t)atoll(argv[4]), atol(argv[5])};
  gpsd_ntp_write(shm, &clock, &receive, atoi(argv[6]), atoi(argv[7]));
  return 0;
}
