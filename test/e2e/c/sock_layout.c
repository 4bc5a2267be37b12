/* struct sock_sample as this platform's compiler lays it out: size and offsetof. */
#include "sock_sample.h"

#include <stddef.h>
#include <stdio.h>

#define FIELD(name, expr) printf("\"%s\":%zu,", name, (size_t)(expr))

int main(void) {
  printf("{\"size\":%zu,\"timevalSize\":%zu,\"magic\":%d,\"offsets\":{", sizeof(struct sock_sample),
         sizeof(struct timeval), SOCK_MAGIC);
  FIELD("tv_sec", offsetof(struct sock_sample, tv) + offsetof(struct timeval, tv_sec));
  FIELD("tv_usec", offsetof(struct sock_sample, tv) + offsetof(struct timeval, tv_usec));
  FIELD("offset", offsetof(struct sock_sample, offset));
  FIELD("pulse", offsetof(struct sock_sample, pulse));
  FIELD("leap", offsetof(struct sock_sample, leap));
  FIELD("_pad", offsetof(struct sock_sample, _pad));
  printf("\"magic\":%zu}}\n", offsetof(struct sock_sample, magic));
  return 0;
}
