// The only file that knows N-API: argument checks, errors and object shapes around
// the plain segment, socket and certificate code in shm_segment.cc, sock_sample.cc and
// cert_verify.cc.
#include <napi.h>

#include <sys/un.h>

#include <cerrno>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cert_verify.h"
#include "shm_segment.h"
#include "sock_sample.h"

namespace {

using htntp::Field;

constexpr double kMaxSafeInteger = 9007199254740991.0;

std::string describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) return "type number (" + value.ToString().Utf8Value() + ")";
  if (value.IsString()) return "type string ('" + value.As<Napi::String>().Utf8Value() + "')";
  if (value.IsBoolean()) return std::string("type boolean (") + (value.As<Napi::Boolean>() ? "true" : "false") + ")";
  if (value.IsBigInt()) return "type bigint";
  if (value.IsFunction()) return "function";
  if (value.IsObject()) return "an instance of Object";
  return "type symbol";
}

Napi::Error codedError(Napi::Error error, const char* code) {
  error.Set("code", code);
  return error;
}

std::string formatNumber(double number) {
  if (std::isnan(number)) return "NaN";
  if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
  char text[32];
  std::snprintf(text, sizeof text, std::trunc(number) == number && std::fabs(number) < 1e21 ? "%.0f" : "%.17g", number);
  return text;
}

// Node's own wording and code for a number out of range (the cold path of checkInteger).
[[noreturn]] __attribute__((noinline)) void throwOutOfRange(Napi::Env env, double number, const char* name,
                                                            double low, double high) {
  char range[96];
  std::snprintf(range, sizeof range, "an integer >= %.0f && <= %.0f", low, high);
  throw codedError(Napi::RangeError::New(env, std::string("The value of \"") + name + "\" is out of range. It must be " +
                                                  range + ". Received " + formatNumber(number)),
                   "ERR_OUT_OF_RANGE");
}

// On every update(): plain comparisons, no libm calls (they showed up in profiles).
inline int64_t checkInteger(Napi::Env env, double number, const char* name, int64_t min, int64_t max) {
  const double low = static_cast<double>(min) < -kMaxSafeInteger ? -kMaxSafeInteger : static_cast<double>(min);
  const double high = static_cast<double>(max) > kMaxSafeInteger ? kMaxSafeInteger : static_cast<double>(max);
  if (number >= low && number <= high) {  // false for NaN
    const int64_t integer = static_cast<int64_t>(number);
    if (static_cast<double>(integer) == number) return integer;
  }
  throwOutOfRange(env, number, name, low, high);
}

// Node's own wording and codes for bad arguments.
int64_t toInteger(const Napi::Value& value, const char* name, int64_t min, int64_t max) {
  const Napi::Env env = value.Env();
  if (!value.IsNumber()) {
    throw codedError(Napi::TypeError::New(env, std::string("The \"") + name +
                                                    "\" argument must be of type number. Received " +
                                                    describe(value)),
                     "ERR_INVALID_ARG_TYPE");
  }
  return checkInteger(env, value.As<Napi::Number>().DoubleValue(), name, min, max);
}

// errno and syscall as Node puts them on its system errors (errno negative); the
// TypeScript side adds `code` and a hint.
Napi::Error systemError(Napi::Env env, const htntp::SysError& failure) {
  Napi::Error error = Napi::Error::New(env, std::string(failure.syscall) + " failed: " + std::strerror(failure.err));
  error.Set("errno", Napi::Number::New(env, -failure.err));
  error.Set("syscall", failure.syscall);
  return error;
}

// The slot arrays the hot calls read and write are Float64Arrays over a
// SharedArrayBuffer made by the TypeScript side: such a buffer can never be detached
// or transferred away, and the reference kept here holds it as long as it is used.
struct Slots {
  Napi::Reference<Napi::Float64Array> ref;
  double* data = nullptr;
};

Slots sharedSlots(const Napi::Value& value, const char* name, size_t count) {
  const Napi::Env env = value.Env();
  const auto invalid = [&]() {
    return codedError(Napi::TypeError::New(env, std::string("The \"") + name + "\" argument must be a Float64Array of at least " +
                                                  std::to_string(count) + " elements over a SharedArrayBuffer"),
                      "ERR_INVALID_ARG_TYPE");
  };
  if (!value.IsTypedArray()) throw invalid();
  const Napi::TypedArray typed = value.As<Napi::TypedArray>();
  if (typed.TypedArrayType() != napi_float64_array || typed.ElementLength() < count) throw invalid();
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  size_t offset = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &offset), Slots());
  bool plain = true;  // a plain ArrayBuffer could be detached under us; a SharedArrayBuffer cannot
  NAPI_THROW_IF_FAILED(env, napi_is_arraybuffer(env, buffer, &plain), Slots());
  if (plain || data == nullptr) throw invalid();
  return Slots{Napi::Persistent(typed.As<Napi::Float64Array>()), static_cast<double*>(data)};
}

htntp::Timespec readClock(Napi::Env env, clockid_t clock) {
  htntp::Timespec now{};
  if (const htntp::SysError failure = htntp::clockNow(clock, &now)) throw systemError(env, failure);
  return now;
}

Napi::Object statObject(Napi::Env env, const htntp::SegmentStat& stat) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", Napi::Number::New(env, static_cast<double>(stat.size)));
  out.Set("perm", Napi::Number::New(env, stat.perm));
  out.Set("uid", Napi::Number::New(env, stat.uid));
  out.Set("cuid", Napi::Number::New(env, stat.cuid));
  out.Set("cpid", Napi::Number::New(env, stat.cpid));
  out.Set("lpid", Napi::Number::New(env, stat.lpid));
  out.Set("nattch", Napi::Number::New(env, static_cast<double>(stat.nattch)));
  out.Set("removed", Napi::Boolean::New(env, stat.removed));
  return out;
}

// statUnit(unit): IPC_STAT of the unit's segment without attaching, plus its shmId.
Napi::Value StatUnit(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int unit = static_cast<int>(toInteger(info[0], "unit", 0, htntp::kMaxUnit));
  htntp::SegmentStat stat{};
  int shmId = -1;
  if (const htntp::SysError failure = htntp::statUnit(unit, &stat, &shmId)) throw systemError(env, failure);
  Napi::Object out = statObject(env, stat);
  out.Set("shmId", Napi::Number::New(env, shmId));
  return out;
}

// unitShmId(unit): the shmid the unit's key names now (key lookup only: no permission needed).
Napi::Value UnitShmId(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int unit = static_cast<int>(toInteger(info[0], "unit", 0, htntp::kMaxUnit));
  int shmId = -1;
  if (const htntp::SysError failure = htntp::unitShmId(unit, &shmId)) throw systemError(env, failure);
  return Napi::Number::New(env, shmId);
}

// The slots both io arrays (Segment's and SockClient's) begin with: one sample's times
// and leap indicator.
enum SampleSlot : int {
  kSampleClockSec = 0,
  kSampleClockNsec = 1,
  kSampleReceiveSec = 2,
  kSampleReceiveNsec = 3,
  kSampleLeap = 4,
  kSampleSlots = 5,
};

void setSampleSlotNumbers(Napi::Env env, Napi::Object out) {
  out.Set("clockSec", Napi::Number::New(env, kSampleClockSec));
  out.Set("clockNsec", Napi::Number::New(env, kSampleClockNsec));
  out.Set("receiveSec", Napi::Number::New(env, kSampleReceiveSec));
  out.Set("receiveNsec", Napi::Number::New(env, kSampleReceiveNsec));
  out.Set("leap", Napi::Number::New(env, kSampleLeap));
}

// A time from two slots, range-checked as the segment's time_t allows.
htntp::Timespec slotTime(Napi::Env env, const double* io, int secSlot, const char* secName, const char* nsecName) {
  htntp::Timespec time{};
  time.sec = checkInteger(env, io[secSlot], secName, 0, htntp::fieldInfo(Field::clockTimeStampSec).max);
  time.nsec = checkInteger(env, io[secSlot + 1], nsecName, 0, 999999999);
  return time;
}

// The hot calls as plain N-API functions bound to an instance (data = the instance): no
// ObjectWrap unwrap, no CallbackInfo, no argument values. Through ObjectWrap methods
// they cost ~150 ns a call here, plain they cost ~40. They live as own properties of
// the wrapped object, which the TypeScript side never lets go of separately.
template <typename T, void (T::*method)(Napi::Env)>
napi_value hotCall(napi_env env, napi_callback_info info) {
  void* self = nullptr;
  if (napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &self) != napi_ok) return nullptr;
  try {
    (static_cast<T*>(self)->*method)(Napi::Env(env));
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
  }
  return nullptr;
}

// Defined, not assigned (no setter up the prototype chain sees it), read-only, and holding
// the wrapper (`self`, under `owner`), so the instance lives as long as the function can be called.
template <typename T, void (T::*method)(Napi::Env)>
Napi::PropertyDescriptor hotProperty(Napi::Env env, T* instance, Napi::Object self, Napi::Symbol owner, const char* name) {
  napi_value function = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, hotCall<T, method>, instance, &function),
                       Napi::PropertyDescriptor::Value(name, env.Undefined()));
  Napi::Function hot(env, function);
  hot.DefineProperty(Napi::PropertyDescriptor::Value(owner, self, napi_default));
  return Napi::PropertyDescriptor::Value(name, hot, napi_default);
}

class Segment : public Napi::ObjectWrap<Segment> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Segment",
                       {
                           InstanceMethod<&Segment::Get>("get"),
                           InstanceMethod<&Segment::Set>("set"),
                           InstanceMethod<&Segment::Stat>("stat"),
                           InstanceMethod<&Segment::Remove>("remove"),
                           InstanceMethod<&Segment::Detach>("detach"),
                           InstanceAccessor<&Segment::Attached>("attached"),
                           InstanceAccessor<&Segment::Created>("created"),
                           InstanceAccessor<&Segment::ReadOnly>("readOnly"),
                           InstanceAccessor<&Segment::Unit>("unit"),
                           InstanceAccessor<&Segment::Key>("key"),
                           InstanceAccessor<&Segment::ShmId>("shmId"),
                       });
  }

  // Slots of io_ (see below).
  enum IoSlot : int {
    kPrecision = kSampleSlots,
    kConsistent = htntp::kFieldCount,  // snapshot(): after the fields
    kRetries = htntp::kFieldCount + 1,
    kIoSlots = htntp::kFieldCount + 2,
  };

  // The slot numbers, exported so the TypeScript side can check its constants against them.
  static Napi::Object IoSlotNumbers(Napi::Env env) {
    Napi::Object out = Napi::Object::New(env);
    setSampleSlotNumbers(env, out);
    out.Set("precision", Napi::Number::New(env, kPrecision));
    out.Set("consistent", Napi::Number::New(env, kConsistent));
    out.Set("retries", Napi::Number::New(env, kRetries));
    out.Set("slots", Napi::Number::New(env, kIoSlots));
    return out;
  }

  // new Segment(unit, create, perm, readOnly, io): io = Float64Array(kIoSlots) over a SharedArrayBuffer
  explicit Segment(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Segment>(info) {
    const Napi::Env env = info.Env();
    htntp::AttachOptions options;
    options.unit = static_cast<int>(toInteger(info[0], "unit", 0, htntp::kMaxUnit));
    options.create = info[1].ToBoolean();
    options.perm = static_cast<int>(toInteger(info[2], "perm", 0, 0777));
    options.readOnly = info[3].ToBoolean();
    unit_ = options.unit;
    io_ = sharedSlots(info[4], "io", kIoSlots);
    if (const htntp::SysError failure = segment_.attach(options)) throw systemError(env, failure);
    // Only a segment that exists gets its hot functions. Defined, not assigned (no
    // setter up the prototype chain sees them), read-only, and each holds the wrapper,
    // so `this` lives as long as any of them can still be called.
    Napi::Object self = info.This().As<Napi::Object>();
    const Napi::Symbol owner = Napi::Symbol::New(env, "htntp segment");
    self.DefineProperties({
        hotProperty<Segment, &Segment::Write>(env, this, self, owner, "write"),
        hotProperty<Segment, &Segment::WriteNow>(env, this, self, owner, "writeNow"),
        hotProperty<Segment, &Segment::Snapshot>(env, this, self, owner, "snapshot"),
    });
  }

 private:
  void requireAttached(Napi::Env env) const {
    if (!segment_.attached()) {
      throw codedError(Napi::Error::New(env, "The SHM segment of unit " + std::to_string(unit_) + " is detached"),
                       "ERR_SHM_DETACHED");
    }
  }
  void requireWritable(Napi::Env env) const {
    requireAttached(env);
    if (segment_.readOnly()) {
      throw codedError(Napi::Error::New(env, "The SHM segment of unit " + std::to_string(unit_) +
                                                 " is attached read-only"),
                       "ERR_SHM_READ_ONLY");
    }
  }
  static Field toField(const Napi::Value& value) {
    return static_cast<Field>(toInteger(value, "field", 0, htntp::kFieldCount - 1));
  }

  Napi::Value Get(const Napi::CallbackInfo& info) {
    const Field field = toField(info[0]);
    requireAttached(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(segment_.get(field)));
  }

  Napi::Value Set(const Napi::CallbackInfo& info) {
    const Field field = toField(info[0]);
    const htntp::FieldInfo& meta = htntp::fieldInfo(field);
    const int64_t value = toInteger(info[1], meta.name, meta.min, meta.max);
    requireWritable(info.Env());
    segment_.set(field, value);
    return info.Env().Undefined();
  }

  // The arguments of write()/writeNow() arrive in io_ (the TypeScript side has checked
  // their types); every one is checked here before the first byte is written.
  htntp::Sample sampleArgs(Napi::Env env, bool withReceive) const {
    const htntp::FieldInfo& precision = htntp::fieldInfo(Field::precision);
    htntp::Sample sample{};
    sample.clock = slotTime(env, io_.data, kSampleClockSec, "clockTime.sec", "clockTime.nsec");
    if (withReceive) sample.receive = slotTime(env, io_.data, kSampleReceiveSec, "receiveTime.sec", "receiveTime.nsec");
    sample.leap = static_cast<int>(checkInteger(env, io_.data[kSampleLeap], "leap", 0, 3));
    sample.precision = static_cast<int>(checkInteger(env, io_.data[kPrecision], "precision", precision.min, precision.max));
    requireWritable(env);
    return sample;
  }

  // write(): io_ = [clockSec, clockNsec, receiveSec, receiveNsec, leap, precision]
  void Write(Napi::Env env) { segment_.write(sampleArgs(env, true)); }

  // writeNow(): as write(), receive = CLOCK_REALTIME read here, after the checks
  void WriteNow(Napi::Env env) {
    htntp::Sample sample = sampleArgs(env, false);
    sample.receive = readClock(env, CLOCK_REALTIME);
    segment_.write(sample);
  }

  // snapshot(): io_ = the 12 fields in declaration order, then consistent (0/1), retries
  void Snapshot(Napi::Env env) {
    requireAttached(env);
    const htntp::Snapshot snapshot = segment_.snapshot();
    for (int i = 0; i < htntp::kFieldCount; ++i) io_.data[i] = static_cast<double>(snapshot.values[i]);
    io_.data[kConsistent] = snapshot.consistent ? 1 : 0;
    io_.data[kRetries] = snapshot.retries;
  }

  Napi::Value Stat(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    requireAttached(env);
    htntp::SegmentStat stat{};
    if (const htntp::SysError failure = segment_.stat(&stat)) throw systemError(env, failure);
    return statObject(env, stat);
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    requireWritable(info.Env());
    if (const htntp::SysError failure = segment_.remove()) throw systemError(info.Env(), failure);
    return info.Env().Undefined();
  }

  Napi::Value Detach(const Napi::CallbackInfo& info) {
    if (const htntp::SysError failure = segment_.detach()) throw systemError(info.Env(), failure);
    return info.Env().Undefined();
  }

  Napi::Value Attached(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), segment_.attached()); }
  Napi::Value Created(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), segment_.created()); }
  Napi::Value ReadOnly(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), segment_.readOnly()); }
  Napi::Value Unit(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), unit_); }
  Napi::Value Key(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), segment_.key()); }
  Napi::Value ShmId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), segment_.shmId()); }

  htntp::Segment segment_;
  int unit_ = 0;
  // Arguments and results pass through this array instead of N-API values: one
  // argument-less call per update() is what keeps it near the C loop.
  Slots io_;
};

// A client end of chrony's SOCK refclock socket. Faults come back as errno values (0 =
// done), not exceptions: a reader that is down is the normal case, retried by the sink.
class SockClient : public Napi::ObjectWrap<SockClient> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SockClient",
                       {
                           InstanceMethod<&SockClient::Connect>("connect"),
                           InstanceMethod<&SockClient::Close>("close"),
                           InstanceAccessor<&SockClient::Connected>("connected"),
                       });
  }

  // Slots of io_: send() reads the sample and leaves its errno in kResult.
  enum IoSlot : int {
    kResult = kSampleSlots,
    kIoSlots = kSampleSlots + 1,
  };

  static Napi::Object IoSlotNumbers(Napi::Env env) {
    Napi::Object out = Napi::Object::New(env);
    setSampleSlotNumbers(env, out);
    out.Set("result", Napi::Number::New(env, kResult));
    out.Set("slots", Napi::Number::New(env, kIoSlots));
    return out;
  }

  // new SockClient(io, wide): io = Float64Array(kIoSlots) over a SharedArrayBuffer; wide:
  // send the 40-byte layout of a 64-bit time_t whatever this platform's (ntpd-rs).
  explicit SockClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SockClient>(info) {
    const Napi::Env env = info.Env();
    io_ = sharedSlots(info[0], "io", kIoSlots);
    wide_ = info.Length() > 1 && info[1].ToBoolean().Value();
    Napi::Object self = info.This().As<Napi::Object>();
    self.DefineProperty(hotProperty<SockClient, &SockClient::Send>(env, this, self, Napi::Symbol::New(env, "htntp sock"), "send"));
  }

 private:
  // connect(path): errno (0 = connected). The path is checked for type and length here.
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsString()) {
      throw codedError(Napi::TypeError::New(env, "The \"path\" argument must be of type string. Received " + describe(info[0])),
                       "ERR_INVALID_ARG_TYPE");
    }
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path) || path.find('\0') != std::string::npos) {
      throw codedError(Napi::RangeError::New(env, "The \"path\" argument must be 1 to " +
                                                      std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                                      " bytes without NUL. Received '" + path + "'"),
                       "ERR_OUT_OF_RANGE");
    }
    return Napi::Number::New(env, client_.connect(path.c_str()).err);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    client_.close();
    return info.Env().Undefined();
  }

  Napi::Value Connected(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), client_.connected()); }

  // send(): io_ = [clockSec, clockNsec, receiveSec, receiveNsec, leap] -> io_[kResult] = errno.
  void Send(Napi::Env env) {
    const htntp::Timespec clock = slotTime(env, io_.data, kSampleClockSec, "clockTime.sec", "clockTime.nsec");
    const htntp::Timespec receive = slotTime(env, io_.data, kSampleReceiveSec, "receiveTime.sec", "receiveTime.nsec");
    // chrony knows 0 (none), 1 (insert) and 2 (delete) and drops anything else.
    const int leap = static_cast<int>(checkInteger(env, io_.data[kSampleLeap], "leap", 0, 2));
    const htntp::sock_sample sample = htntp::makeSockSample(clock, receive, leap);
    io_.data[kResult] = (wide_ ? client_.send(htntp::widenSockSample(sample)) : client_.send(sample)).err;
  }

  htntp::SockClient client_;
  Slots io_;
  bool wide_ = false;
};

// The clocks write into a Float64Array the TypeScript side turns into { sec, nsec }:
// an object built in JavaScript costs a tenth of one built through N-API. The array
// (over a SharedArrayBuffer) is handed over once per Node environment by useClockSlots;
// the functions get this environment's Slots as their data.
constexpr int kClockSec = 0;
constexpr int kClockNsec = 1;
constexpr int kClockSlots = 2;

template <void (*read)(Napi::Env, double*)>
napi_value clockCall(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  if (napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data) != napi_ok) return nullptr;
  try {
    const Slots& slots = *static_cast<Slots*>(data);
    if (slots.data == nullptr) {
      throw codedError(Napi::Error::New(env, "useClockSlots() has not been called"), "ERR_INVALID_STATE");
    }
    read(Napi::Env(env), slots.data);
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
  }
  return nullptr;
}

void putClock(Napi::Env env, clockid_t clock, double* slots) {
  const htntp::Timespec now = readClock(env, clock);
  slots[kClockSec] = static_cast<double>(now.sec);
  slots[kClockNsec] = static_cast<double>(now.nsec);
}

// clockIo = [sec, nsec] of CLOCK_REALTIME
void ReadRealtime(Napi::Env env, double* slots) { putClock(env, CLOCK_REALTIME, slots); }
// clockIo = [sec, nsec] of CLOCK_MONOTONIC_RAW
void ReadMonotonicRaw(Napi::Env env, double* slots) { putClock(env, htntp::monotonicRawClock(), slots); }

template <void (*read)(Napi::Env, double*)>
void exportClock(Napi::Env env, Napi::Object exports, const char* name, Slots* slots) {
  napi_value function = nullptr;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, clockCall<read>, slots, &function));
  exports.Set(name, Napi::Value(env, function));
}

// new TrustStore(pem): trust anchors for verify(ders, host, atSeconds) (cert_verify.h).
class TrustStore : public Napi::ObjectWrap<TrustStore> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TrustStore",
                       {
                           InstanceMethod<&TrustStore::Verify>("verify"),
                           InstanceAccessor<&TrustStore::Size>("size"),
                       });
  }

  explicit TrustStore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrustStore>(info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsString()) {
      throw codedError(
          Napi::TypeError::New(env, "The \"pem\" argument must be of type string. Received " + describe(info[0])),
          "ERR_INVALID_ARG_TYPE");
    }
    store_ = std::make_unique<htntp::TrustStore>(info[0].As<Napi::String>().Utf8Value());
  }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(store_->size()));
  }

  // verify(ders: Buffer[], host: string, atSeconds: number) -> { ok, code, message, depth, path }
  Napi::Value Verify(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsArray()) {
      throw codedError(
          Napi::TypeError::New(env, "The \"ders\" argument must be an array of Buffers. Received " + describe(info[0])),
          "ERR_INVALID_ARG_TYPE");
    }
    if (!info[1].IsString()) {
      throw codedError(
          Napi::TypeError::New(env, "The \"host\" argument must be of type string. Received " + describe(info[1])),
          "ERR_INVALID_ARG_TYPE");
    }
    const Napi::Array list = info[0].As<Napi::Array>();
    std::vector<std::string> ders;
    for (uint32_t index = 0; index < list.Length(); ++index) {
      const Napi::Value item = list.Get(index);
      if (!item.IsBuffer()) {
        throw codedError(Napi::TypeError::New(env, "The \"ders\" argument must be an array of Buffers. Received " +
                                                       describe(item) + " at " + std::to_string(index)),
                         "ERR_INVALID_ARG_TYPE");
      }
      const Napi::Buffer<char> buffer = item.As<Napi::Buffer<char>>();
      ders.emplace_back(buffer.Data(), buffer.Length());
    }
    // Seconds since the epoch as this platform's time_t holds them (to 2038 where it is 32 bits).
    const int64_t latest = std::min<int64_t>(std::numeric_limits<time_t>::max(), static_cast<int64_t>(kMaxSafeInteger));
    const int64_t at = toInteger(info[2], "atSeconds", 0, latest);
    const htntp::ChainVerdict verdict = store_->verify(ders, info[1].As<Napi::String>().Utf8Value(), at);
    Napi::Object out = Napi::Object::New(env);
    out.Set("ok", Napi::Boolean::New(env, verdict.ok));
    out.Set("code", Napi::String::New(env, verdict.code));
    out.Set("message", Napi::String::New(env, verdict.message));
    out.Set("depth", Napi::Number::New(env, verdict.depth));
    Napi::Array path = Napi::Array::New(env, verdict.path.size());
    for (size_t index = 0; index < verdict.path.size(); ++index) {
      const htntp::CertificateWindow& window = verdict.path[index];
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("subject", Napi::String::New(env, window.subject));
      entry.Set("notBefore", Napi::Number::New(env, static_cast<double>(window.notBefore)));
      entry.Set("notAfter", Napi::Number::New(env, static_cast<double>(window.notAfter)));
      path.Set(static_cast<uint32_t>(index), entry);
    }
    out.Set("path", path);
    return out;
  }

  std::unique_ptr<htntp::TrustStore> store_;
};

// readClockState(): the kernel's clock discipline state (ntp_adjtime, modes 0).
Napi::Value ReadClockState(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  htntp::ClockState state;
  if (const htntp::SysError failure = htntp::clockState(&state)) throw systemError(env, failure);
  Napi::Object out = Napi::Object::New(env);
  out.Set("state", Napi::Number::New(env, state.state));
  out.Set("status", Napi::Number::New(env, state.status));
  out.Set("maxErrorUs", Napi::Number::New(env, static_cast<double>(state.maxErrorUs)));
  out.Set("estErrorUs", Napi::Number::New(env, static_cast<double>(state.estErrorUs)));
  out.Set("unsynchronised", Napi::Boolean::New(env, state.unsynchronised));
  return out;
}

// The struct as this platform compiled it: size, offsets and field ranges.
Napi::Object Layout(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", Napi::Number::New(env, sizeof(htntp::shmTime)));
  out.Set("timeTSize", Napi::Number::New(env, sizeof(time_t)));
  Napi::Array fields = Napi::Array::New(env, htntp::kFieldCount);
  for (int i = 0; i < htntp::kFieldCount; ++i) {
    const htntp::FieldInfo& meta = htntp::fieldInfo(static_cast<Field>(i));
    Napi::Object field = Napi::Object::New(env);
    field.Set("name", meta.name);
    field.Set("offset", Napi::Number::New(env, static_cast<double>(meta.offset)));
    field.Set("min", Napi::Number::New(env, std::fmax(static_cast<double>(meta.min), -kMaxSafeInteger)));
    field.Set("max", Napi::Number::New(env, std::fmin(static_cast<double>(meta.max), kMaxSafeInteger)));
    fields.Set(i, field);
  }
  out.Set("fields", fields);
  out.Set("dummyOffset", Napi::Number::New(env, offsetof(htntp::shmTime, dummy)));
  out.Set("keyBase", Napi::Number::New(env, htntp::kKeyBase));
  return out;
}

// struct sock_sample as this platform compiled it.
Napi::Object SockLayout(Napi::Env env) {
  using htntp::sock_sample;
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", Napi::Number::New(env, sizeof(sock_sample)));
  out.Set("timevalSize", Napi::Number::New(env, sizeof(struct timeval)));
  Napi::Object offsets = Napi::Object::New(env);
  offsets.Set("tv_sec", Napi::Number::New(env, offsetof(sock_sample, tv) + offsetof(struct timeval, tv_sec)));
  offsets.Set("tv_usec", Napi::Number::New(env, offsetof(sock_sample, tv) + offsetof(struct timeval, tv_usec)));
  offsets.Set("offset", Napi::Number::New(env, offsetof(sock_sample, offset)));
  offsets.Set("pulse", Napi::Number::New(env, offsetof(sock_sample, pulse)));
  offsets.Set("leap", Napi::Number::New(env, offsetof(sock_sample, leap)));
  offsets.Set("_pad", Napi::Number::New(env, offsetof(sock_sample, _pad)));
  offsets.Set("magic", Napi::Number::New(env, offsetof(sock_sample, magic)));
  out.Set("offsets", offsets);
  out.Set("magic", Napi::Number::New(env, htntp::kSockMagic));
  out.Set("maxPathBytes", Napi::Number::New(env, sizeof(sockaddr_un{}.sun_path) - 1));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Segment", Segment::Init(env));
  // Freed with the environment, which outlives every function that points to it.
  Slots* clockSlots = new Slots();
  env.SetInstanceData<Slots>(clockSlots);
  exports.Set("useClockSlots", Napi::Function::New(env, [clockSlots](const Napi::CallbackInfo& info) {
    *clockSlots = sharedSlots(info[0], "slots", kClockSlots);
  }, "useClockSlots"));
  exportClock<ReadRealtime>(env, exports, "readRealtime", clockSlots);
  exportClock<ReadMonotonicRaw>(env, exports, "readMonotonicRaw", clockSlots);
  exports.Set("statUnit", Napi::Function::New(env, StatUnit, "statUnit"));
  exports.Set("unitShmId", Napi::Function::New(env, UnitShmId, "unitShmId"));
  exports.Set("readClockState", Napi::Function::New(env, ReadClockState, "readClockState"));
  exports.Set("layout", Layout(env));
  Napi::Object slotNumbers = Napi::Object::New(env);
  slotNumbers.Set("io", Segment::IoSlotNumbers(env));
  Napi::Object clock = Napi::Object::New(env);
  clock.Set("sec", Napi::Number::New(env, kClockSec));
  clock.Set("nsec", Napi::Number::New(env, kClockNsec));
  clock.Set("slots", Napi::Number::New(env, kClockSlots));
  slotNumbers.Set("clock", clock);
  slotNumbers.Set("sock", SockClient::IoSlotNumbers(env));
  exports.Set("slotNumbers", slotNumbers);
  exports.Set("SockClient", SockClient::Init(env));
  exports.Set("sockLayout", SockLayout(env));
  exports.Set("TrustStore", TrustStore::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(htntp, Init)
