/* chrony's SOCK refclock sample as chrony's refclock_sock.c declares it, written
 * independently of native/ so that the tests check the addon against the reference. */
#ifndef HTNTP_TEST_SOCK_SAMPLE_H
#define HTNTP_TEST_SOCK_SAMPLE_H

#include <sys/time.h>

#define SOCK_MAGIC 0x534f434b

struct sock_sample {
  struct timeval tv;
  double offset;
  int pulse;
  int leap;
  int _pad;
  int magic;
};

#endif
