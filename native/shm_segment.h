// The ntpd SHM reference clock segment (driver 28), free of any Node API.
// Layout and protocol follow ntpd/ntpsec refclock_shm.c and gpsd's ntpshmwrite.c.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>

namespace htntp {

// Declared exactly as ntpd, ntpsec and gpsd do, with this platform's own time_t, so
// that 32- and 64-bit ABIs both get the layout their ntpd expects.
struct shmTime {
  int mode;  // 0: no count check by readers; 1: count/valid protocol
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

constexpr key_t kKeyBase = 0x4E545030;  // "NTP0"
constexpr int kMaxUnit = 255;

// The one list of the struct's fields, in declaration order, with each field's C type:
// the enum, the range table, get/set and the snapshot copy are all generated from it.
// (The struct itself stays written out above, exactly as ntpd declares it.)
#define HTNTP_SHM_FIELDS(X)    \
  X(mode, int)                 \
  X(count, int)                \
  X(clockTimeStampSec, time_t) \
  X(clockTimeStampUSec, int)   \
  X(receiveTimeStampSec, time_t) \
  X(receiveTimeStampUSec, int) \
  X(leap, int)                 \
  X(precision, int)            \
  X(nsamples, int)             \
  X(valid, int)                \
  X(clockTimeStampNSec, unsigned) \
  X(receiveTimeStampNSec, unsigned)

// Fields in declaration order; the index is what the binding passes around.
enum class Field : int {
#define HTNTP_FIELD_ENUM(name, type) name,
  HTNTP_SHM_FIELDS(HTNTP_FIELD_ENUM)
#undef HTNTP_FIELD_ENUM
};
#define HTNTP_FIELD_COUNT(name, type) +1
constexpr int kFieldCount = 0 HTNTP_SHM_FIELDS(HTNTP_FIELD_COUNT);
#undef HTNTP_FIELD_COUNT

struct FieldInfo {
  const char* name;
  size_t offset;
  int64_t min;  // the C type's range; leap narrows it to 0..3
  int64_t max;
};
const FieldInfo& fieldInfo(Field field);

// An error from a system call: errno and the call's name. err == 0 means success.
struct SysError {
  int err = 0;
  const char* syscall = nullptr;
  explicit operator bool() const { return err != 0; }
};

struct Timespec {
  int64_t sec;
  int64_t nsec;
};

struct Sample {
  Timespec clock;    // the reference ("true") time of the event
  Timespec receive;  // CLOCK_REALTIME when the event was seen
  int leap;
  int precision;
};

// Every field, copied while count stood still (or the last try, if it never did).
struct Snapshot {
  int64_t values[kFieldCount];
  bool consistent;
  int retries;
};

// What IPC_STAT says of the segment.
struct SegmentStat {
  size_t size;
  unsigned perm;  // the low 9 mode bits
  uid_t uid;
  uid_t cuid;
  pid_t cpid;  // creator
  pid_t lpid;  // last shmat/shmdt
  unsigned long nattch;
  bool removed;  // marked for destruction (ipcrm) but still attached here
};

struct AttachOptions {
  int unit = 0;
  bool create = true;
  int perm = 0600;
  bool readOnly = false;
};

class Segment {
 public:
  Segment() = default;
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // Attaches to the unit's segment, creating it (initialised the way gpsd does) when
  // allowed and absent. On failure the segment stays detached.
  SysError attach(const AttachOptions& options);
  SysError detach();
  bool attached() const { return shm_ != nullptr; }
  bool readOnly() const { return readOnly_; }
  bool created() const { return created_; }
  int shmId() const { return shmId_; }
  key_t key() const { return key_; }

  int64_t get(Field field) const;
  void set(Field field, int64_t value);

  // One sample, the way gpsd's ntp_write does it (valid/count protocol with fences).
  void write(const Sample& sample);
  Snapshot snapshot() const;
  SysError stat(SegmentStat* out) const;
  // IPC_RMID (refused on a read-only attachment: looking must never destroy): the segment goes
  // when the last process detaches.
  SysError remove();

 private:
  shmTime* shm_ = nullptr;
  int shmId_ = -1;
  key_t key_ = 0;
  bool readOnly_ = false;
  bool created_ = false;
};

// IPC_STAT of the unit's segment without attaching to it, whatever its size: what a
// diagnosis needs for a segment it could not (or must not) attach. ENOENT if absent.
SysError statUnit(int unit, SegmentStat* out, int* shmId);

// The shmid the unit's key names now, by key lookup alone: shmget asking for no access
// bits needs no permission on the segment, so a process that dropped privileges (and can
// no longer IPC_STAT a 0600 segment) still sees a removal (ENOENT, or another shmid).
SysError unitShmId(int unit, int* shmId);

SysError clockNow(clockid_t clock, Timespec* out);
clockid_t monotonicRawClock();

// The kernel's view of the system clock's discipline, as ntp_adjtime() reports it.
struct ClockState {
  int state = 0;          // TIME_OK, TIME_INS, ..., TIME_ERROR
  int status = 0;         // STA_* bits
  long maxErrorUs = 0;    // the daemon's bound on the clock's error, microseconds
  long estErrorUs = 0;
  bool unsynchronised = true;  // STA_UNSYNC set (or TIME_ERROR)
};
SysError clockState(ClockState* out);

}  // namespace htntp
