/* The reference struct as this platform's compiler lays it out: size and offsetof. */
#include "shm_time.h"

#include <stddef.h>

#define FIELD(name) printf("\"%s\":%zu,", #name, offsetof(struct shmTime, name))

int main(void) {
  printf("{\"size\":%zu,\"timeTSize\":%zu,\"offsets\":{", sizeof(struct shmTime), sizeof(time_t));
  FIELD(mode);
  FIELD(count);
  FIELD(clockTimeStampSec);
  FIELD(clockTimeStampUSec);
  FIELD(receiveTimeStampSec);
  FIELD(receiveTimeStampUSec);
  FIELD(leap);
  FIELD(precision);
  FIELD(nsamples);
  FIELD(valid);
  FIELD(clockTimeStampNSec);
  FIELD(receiveTimeStampNSec);
  printf("\"dummy\":%zu}}\n", offsetof(struct shmTime, dummy));
  return 0;
}
