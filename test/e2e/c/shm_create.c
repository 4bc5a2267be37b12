/* Creates a segment of any size at the unit's key (like a 32-bit ntpd: 80 bytes).
 * Usage: shm_create UNIT SIZE PERM_OCTAL; prints the shmid. */
#include "shm_time.h"

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s UNIT SIZE PERM_OCTAL\n", argv[0]);
    return 2;
  }
  int id = shmget((key_t)(NTPD_BASE + atoi(argv[1])), (size_t)atol(argv[2]),
                  IPC_CREAT | IPC_EXCL | (int)strtol(argv[3], NULL, 8));
  if (id < 0) {
    fprintf(stderr, "shmget: %s\n", strerror(errno));
    return 1;
  }
  printf("%d\n", id);
  return 0;
}
