/* An independent reader: attaches read-only and prints every field, one by one, as JSON.
 * Usage: shm_read UNIT */
#include "shm_time.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s UNIT\n", argv[0]);
    return 2;
  }
  volatile struct shmTime *shm = shm_attach(atoi(argv[1]), 0, 1);
  printf("{\"mode\":%d,\"count\":%d,\"clockTimeStampSec\":%lld,\"clockTimeStampUSec\":%d,"
         "\"receiveTimeStampSec\":%lld,\"receiveTimeStampUSec\":%d,\"leap\":%d,\"precision\":%d,"
         "\"nsamples\":%d,\"valid\":%d,\"clockTimeStampNSec\":%u,\"receiveTimeStampNSec\":%u}\n",
         shm->mode, shm->count, (long long)shm->clockTimeStampSec, shm->clockTimeStampUSec,
         (long long)shm->receiveTimeStampSec, shm->receiveTimeStampUSec, shm->leap, shm->precision,
         shm->nsamples, shm->valid, shm->clockTimeStampNSec, shm->receiveTimeStampNSec);
  return 0;
}
