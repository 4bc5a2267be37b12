#include "shm_segment.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/timex.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <type_traits>

namespace htntp {
namespace {

template <typename T>
constexpr int64_t lowest() {
  return static_cast<int64_t>(std::numeric_limits<T>::lowest());
}
template <typename T>
constexpr int64_t highest() {
  // time_t could in theory exceed int64_t; clamp so the table stays representable.
  return std::numeric_limits<T>::max() > INT64_MAX
             ? INT64_MAX
             : static_cast<int64_t>(std::numeric_limits<T>::max());
}

// The C type's range, except leap: its values mean something only from 0 to 3.
constexpr FieldInfo fieldEntry(Field field, const char* name, size_t offset, int64_t min, int64_t max) {
  return field == Field::leap ? FieldInfo{name, offset, 0, 3} : FieldInfo{name, offset, min, max};
}

#define HTNTP_FIELD_INFO(name, type) \
  fieldEntry(Field::name, #name, offsetof(shmTime, name), lowest<type>(), highest<type>()),
const FieldInfo kFields[kFieldCount] = {HTNTP_SHM_FIELDS(HTNTP_FIELD_INFO)};
#undef HTNTP_FIELD_INFO

// The list must follow the struct's declaration order: each field after the one before.
#define HTNTP_FIELD_OFFSET(name, type) offsetof(shmTime, name),
constexpr size_t kOffsets[kFieldCount] = {HTNTP_SHM_FIELDS(HTNTP_FIELD_OFFSET)};
#undef HTNTP_FIELD_OFFSET
constexpr bool inDeclarationOrder() {
  for (int i = 1; i < kFieldCount; ++i) {
    if (kOffsets[i] <= kOffsets[i - 1]) return false;
  }
  return true;
}
static_assert(inDeclarationOrder(), "HTNTP_SHM_FIELDS must list struct shmTime's fields in declaration order");

inline void fence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// count is a signed int in the struct; step it in unsigned arithmetic so that the
// wrap at INT_MAX is defined.
inline void bump(volatile int* count) {
  *count = static_cast<int>(static_cast<unsigned>(*count) + 1u);
}

SysError statId(int id, SegmentStat* out) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return {errno, "shmctl"};
  out->size = ds.shm_segsz;
  out->perm = ds.shm_perm.mode & 0777;
  out->uid = ds.shm_perm.uid;
  out->cuid = ds.shm_perm.cuid;
  out->cpid = ds.shm_cpid;
  out->lpid = ds.shm_lpid;
  out->nattch = ds.shm_nattch;
#ifdef SHM_DEST
  out->removed = (ds.shm_perm.mode & SHM_DEST) != 0;
#else
  out->removed = false;
#endif
  return {};
}

}  // namespace

const FieldInfo& fieldInfo(Field field) { return kFields[static_cast<int>(field)]; }

Segment::~Segment() { detach(); }

SysError Segment::attach(const AttachOptions& options) {
  detach();
  const key_t key = kKeyBase + options.unit;
  const int access = options.readOnly ? SHM_RDONLY : 0;
  bool created = false;
  int id = -1;
  // Attach first; create only if absent. IPC_EXCL tells us whether we made it, and a
  // creator racing us just sends us back to attaching.
  for (int attempt = 0; attempt < 3 && id < 0; ++attempt) {
    id = shmget(key, sizeof(shmTime), 0);
    if (id >= 0) break;
    if (errno != ENOENT || !options.create) return {errno, "shmget"};
    id = shmget(key, sizeof(shmTime), IPC_CREAT | IPC_EXCL | (options.perm & 0777));
    if (id >= 0) {
      created = true;
      break;
    }
    if (errno != EEXIST) return {errno, "shmget"};
  }
  if (id < 0) return {EEXIST, "shmget"};
  if (!created) {
    // shmget accepts any existing segment at least as large as asked: a larger one is
    // another program's or another ABI's struct, and writing ours into it would feed its
    // readers garbage. Refuse it as shmget refuses a smaller one.
    // IPC_STAT and shmat both need read permission: if this is refused, shmat says so.
    SegmentStat existing{};
    const SysError failure = statId(id, &existing);
    if (failure && failure.err != EACCES) return failure;
    if (!failure && existing.size != sizeof(shmTime)) return {EINVAL, "shmget"};
  }

  void* address = shmat(id, nullptr, access);
  if (address == reinterpret_cast<void*>(-1)) return {errno, "shmat"};
  shm_ = static_cast<shmTime*>(address);
  shmId_ = id;
  key_ = key;
  readOnly_ = options.readOnly;
  created_ = created;
  if (created && !readOnly_) {
    // What gpsd puts in a new segment: protocol mode, "not in sync" until a sample.
    shm_->mode = 1;
    shm_->leap = 3;
    shm_->precision = -20;
    shm_->nsamples = 3;
  }
  return {};
}

SysError Segment::detach() {
  if (shm_ == nullptr) return {};
  shmTime* shm = shm_;
  shm_ = nullptr;
  if (shmdt(shm) != 0) return {errno, "shmdt"};
  return {};
}

int64_t Segment::get(Field field) const {
  switch (field) {
#define HTNTP_FIELD_GET(name, type) \
  case Field::name:                 \
    return static_cast<int64_t>(shm_->name);
    HTNTP_SHM_FIELDS(HTNTP_FIELD_GET)
#undef HTNTP_FIELD_GET
  }
  return 0;
}

void Segment::set(Field field, int64_t value) {
  switch (field) {
#define HTNTP_FIELD_SET(name, type)              \
  case Field::name:                              \
    shm_->name = static_cast<type>(value);       \
    break;
    HTNTP_SHM_FIELDS(HTNTP_FIELD_SET)
#undef HTNTP_FIELD_SET
  }
}

void Segment::write(const Sample& sample) {
  shmTime* shm = shm_;
  shm->valid = 0;
  bump(&shm->count);
  fence();
  shm->mode = 1;
  shm->clockTimeStampSec = static_cast<time_t>(sample.clock.sec);
  shm->clockTimeStampUSec = static_cast<int>(sample.clock.nsec / 1000);  // truncated
  shm->clockTimeStampNSec = static_cast<unsigned>(sample.clock.nsec);
  shm->receiveTimeStampSec = static_cast<time_t>(sample.receive.sec);
  shm->receiveTimeStampUSec = static_cast<int>(sample.receive.nsec / 1000);
  shm->receiveTimeStampNSec = static_cast<unsigned>(sample.receive.nsec);
  shm->leap = sample.leap;
  shm->precision = sample.precision;
  fence();
  bump(&shm->count);
  fence();
  shm->valid = 1;
}

Snapshot Segment::snapshot() const {
  // Readers' rule: a copy is good if count did not move across it. Bounded, because a
  // writer in a tight loop could otherwise keep us here.
  constexpr int kMaxRetries = 1000;
  Snapshot out{};
  for (int attempt = 0; attempt <= kMaxRetries; ++attempt) {
    const int before = shm_->count;
    fence();
    // Straight-line copy: get()'s switch, taken 12 times, cost more than the rest.
    const shmTime* shm = shm_;
    int64_t* values = out.values;
#define HTNTP_FIELD_COPY(name, type) values[static_cast<int>(Field::name)] = static_cast<int64_t>(shm->name);
    HTNTP_SHM_FIELDS(HTNTP_FIELD_COPY)
#undef HTNTP_FIELD_COPY
    fence();
    const int after = shm_->count;
    out.retries = attempt;
    out.consistent = before == after;
    if (out.consistent) break;
  }
  return out;
}

SysError Segment::stat(SegmentStat* out) const { return statId(shmId_, out); }

SysError Segment::remove() {
  if (readOnly_) return {EPERM, "shmctl"};
  if (shmctl(shmId_, IPC_RMID, nullptr) != 0) return {errno, "shmctl"};
  return {};
}

SysError unitShmId(int unit, int* shmId) {
  const int id = shmget(kKeyBase + unit, 0, 0);
  if (id < 0) return {errno, "shmget"};
  *shmId = id;
  return {};
}

SysError statUnit(int unit, SegmentStat* out, int* shmId) {
  if (const SysError failure = unitShmId(unit, shmId)) return failure;
  return statId(*shmId, out);
}

SysError clockNow(clockid_t clock, Timespec* out) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return {errno, "clock_gettime"};
  out->sec = ts.tv_sec;
  out->nsec = ts.tv_nsec;
  return {};
}

clockid_t monotonicRawClock() {
#ifdef CLOCK_MONOTONIC_RAW
  return CLOCK_MONOTONIC_RAW;
#else
  return CLOCK_MONOTONIC;  // FreeBSD has no raw clock; its monotonic clock is not slewed by ntpd's PLL in the same way
#endif
}

SysError clockState(ClockState* out) {
  // modes = 0 reads without changing anything, so no privilege is needed.
  struct timex tx {};
  tx.modes = 0;
  const int state = ntp_adjtime(&tx);
  if (state == -1) return {errno, "ntp_adjtime"};
  out->state = state;
  out->status = tx.status;
  out->maxErrorUs = tx.maxerror;
  out->estErrorUs = tx.esterror;
  out->unsynchronised = (tx.status & STA_UNSYNC) != 0 || state == TIME_ERROR;
  return {};
}

}  // namespace htntp
