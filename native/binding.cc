// The only file that knows N-API: argument checks, errors and object shapes around
// the plain segment, socket and certificate code in shm_segment.cc, sock_sample.cc and
// cert_verify.cc.
#include <napi.h>

#include <sys/un.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
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

// Node's ERR_INVALID_ARG_TYPE, in Node's words: `expected` is "of type string", "an array of Buffers"...
Napi::Error invalidArgType(const Napi::Value& value, const char* name, const char* expected) {
  const std::string message =
      std::string("The \"") + name + "\" argument must be " + expected + ". Received " + describe(value);
  return codedError(Napi::TypeError::New(value.Env(), message), "ERR_INVALID_ARG_TYPE");
}

std::string formatNumber(double number) {
  if (std::isnan(number)) return "NaN";
  if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
  char text[32];
  std::snprintf(text, sizeof text, std::trunc(number) == number && std::fabs(number) < 1e21 ? "%.0f" : "%.17g", number);
  return text;
}

// An integer argument in [min, max] (clamped to the safe integers), with Node's own wording and codes.
int64_t toInteger(const Napi::Value& value, const char* name, int64_t min, int64_t max) {
  const Napi::Env env = value.Env();
  if (!value.IsNumber()) throw invalidArgType(value, name, "of type number");
  const double number = value.As<Napi::Number>().DoubleValue();
  const double low = std::fmax(static_cast<double>(min), -kMaxSafeInteger);
  const double high = std::fmin(static_cast<double>(max), kMaxSafeInteger);
  if (number >= low && number <= high && std::trunc(number) == number) return static_cast<int64_t>(number);
  char range[96];
  std::snprintf(range, sizeof range, "an integer >= %.0f && <= %.0f", low, high);
  const std::string message = std::string("The value of \"") + name + "\" is out of range. It must be " + range +
                              ". Received " + formatNumber(number);
  throw codedError(Napi::RangeError::New(env, message), "ERR_OUT_OF_RANGE");
}

// errno and syscall as Node puts them on its system errors (errno negative); the
// TypeScript side adds `code` and a hint.
Napi::Error systemError(Napi::Env env, const htntp::SysError& failure) {
  Napi::Error error = Napi::Error::New(env, std::string(failure.syscall) + " failed: " + std::strerror(failure.err));
  error.Set("errno", Napi::Number::New(env, -failure.err));
  error.Set("syscall", failure.syscall);
  return error;
}

htntp::Timespec readClock(Napi::Env env, clockid_t clock) {
  htntp::Timespec now{};
  if (const htntp::SysError failure = htntp::clockNow(clock, &now)) throw systemError(env, failure);
  return now;
}

Napi::Object timespecObject(Napi::Env env, const htntp::Timespec& time) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("sec", Napi::Number::New(env, static_cast<double>(time.sec)));
  out.Set("nsec", Napi::Number::New(env, static_cast<double>(time.nsec)));
  return out;
}

// readRealtime(), readMonotonicRaw(): { sec, nsec } from clock_gettime.
Napi::Value ReadRealtime(const Napi::CallbackInfo& info) {
  return timespecObject(info.Env(), readClock(info.Env(), CLOCK_REALTIME));
}
Napi::Value ReadMonotonicRaw(const Napi::CallbackInfo& info) {
  return timespecObject(info.Env(), readClock(info.Env(), htntp::monotonicRawClock()));
}
// readMonotonicRawMs(): the same clock in ms as one number, for ServerClock#now() (no object).
Napi::Value ReadMonotonicRawMs(const Napi::CallbackInfo& info) {
  const htntp::Timespec now = readClock(info.Env(), htntp::monotonicRawClock());
  return Napi::Number::New(info.Env(), static_cast<double>(now.sec) * 1000 + static_cast<double>(now.nsec) / 1e6);
}

// A time from two arguments (sec, nsec), range-checked as the segment's time_t allows.
htntp::Timespec timeArgs(const Napi::CallbackInfo& info, size_t index, const char* secName, const char* nsecName) {
  htntp::Timespec time{};
  time.sec = toInteger(info[index], secName, 0, htntp::fieldInfo(Field::clockTimeStampSec).max);
  time.nsec = toInteger(info[index + 1], nsecName, 0, 999999999);
  return time;
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

class Segment : public Napi::ObjectWrap<Segment> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Segment",
                       {
                           InstanceMethod<&Segment::Get>("get"),
                           InstanceMethod<&Segment::Set>("set"),
                           InstanceMethod<&Segment::Write>("write"),
                           InstanceMethod<&Segment::WriteNow>("writeNow"),
                           InstanceMethod<&Segment::Snapshot>("snapshot"),
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

  // new Segment(unit, create, perm, readOnly)
  explicit Segment(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Segment>(info) {
    htntp::AttachOptions options;
    options.unit = static_cast<int>(toInteger(info[0], "unit", 0, htntp::kMaxUnit));
    options.create = info[1].ToBoolean();
    options.perm = static_cast<int>(toInteger(info[2], "perm", 0, 0777));
    options.readOnly = info[3].ToBoolean();
    unit_ = options.unit;
    if (const htntp::SysError failure = segment_.attach(options)) throw systemError(info.Env(), failure);
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

  // The arguments of write()/writeNow(), every one checked before the first byte is written.
  htntp::Sample sampleArgs(const Napi::CallbackInfo& info, bool withReceive) const {
    const htntp::FieldInfo& precision = htntp::fieldInfo(Field::precision);
    const size_t leapIndex = withReceive ? 4 : 2;
    htntp::Sample sample{};
    sample.clock = timeArgs(info, 0, "clockTime.sec", "clockTime.nsec");
    if (withReceive) sample.receive = timeArgs(info, 2, "receiveTime.sec", "receiveTime.nsec");
    sample.leap = static_cast<int>(toInteger(info[leapIndex], "leap", 0, 3));
    sample.precision = static_cast<int>(toInteger(info[leapIndex + 1], "precision", precision.min, precision.max));
    requireWritable(info.Env());
    return sample;
  }

  // write(clockSec, clockNsec, receiveSec, receiveNsec, leap, precision)
  Napi::Value Write(const Napi::CallbackInfo& info) {
    segment_.write(sampleArgs(info, true));
    return info.Env().Undefined();
  }

  // writeNow(clockSec, clockNsec, leap, precision): receive = CLOCK_REALTIME read after the checks
  Napi::Value WriteNow(const Napi::CallbackInfo& info) {
    htntp::Sample sample = sampleArgs(info, false);
    sample.receive = readClock(info.Env(), CLOCK_REALTIME);
    segment_.write(sample);
    return info.Env().Undefined();
  }

  // snapshot(): { mode, count, ..., receiveTimeStampNSec, consistent }
  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    requireAttached(env);
    const htntp::Snapshot snapshot = segment_.snapshot();
    Napi::Object out = Napi::Object::New(env);
    for (int i = 0; i < htntp::kFieldCount; ++i) {
      const double value = static_cast<double>(snapshot.values[i]);
      out.Set(htntp::fieldInfo(static_cast<Field>(i)).name, Napi::Number::New(env, value));
    }
    out.Set("consistent", Napi::Boolean::New(env, snapshot.consistent));
    return out;
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
};

// A client end of chrony's SOCK refclock socket. Faults come back as errno values (0 =
// done), not exceptions: a reader that is down is the normal case, retried by the sink.
class SockClient : public Napi::ObjectWrap<SockClient> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SockClient",
                       {
                           InstanceMethod<&SockClient::Connect>("connect"),
                           InstanceMethod<&SockClient::Send>("send"),
                           InstanceMethod<&SockClient::Close>("close"),
                           InstanceAccessor<&SockClient::Connected>("connected"),
                       });
  }

  // new SockClient(wide): wide = send the 40-byte layout of a 64-bit time_t whatever
  // this platform's (ntpd-rs).
  explicit SockClient(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<SockClient>(info), wide_(info[0].ToBoolean().Value()) {}

 private:
  // connect(path): errno (0 = connected). The path is checked for type and length here.
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsString()) throw invalidArgType(info[0], "path", "of type string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path) || path.find('\0') != std::string::npos) {
      throw codedError(Napi::RangeError::New(env, "The \"path\" argument must be 1 to " +
                                                      std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                                      " bytes without NUL. Received '" + path + "'"),
                       "ERR_OUT_OF_RANGE");
    }
    return Napi::Number::New(env, client_.connect(path.c_str()).err);
  }

  // send(clockSec, clockNsec, receiveSec, receiveNsec, leap): errno (0 = sent), after the checks.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    const htntp::Timespec clock = timeArgs(info, 0, "clockTime.sec", "clockTime.nsec");
    const htntp::Timespec receive = timeArgs(info, 2, "receiveTime.sec", "receiveTime.nsec");
    // chrony knows 0 (none), 1 (insert) and 2 (delete) and drops anything else.
    const int leap = static_cast<int>(toInteger(info[4], "leap", 0, 2));
    const htntp::sock_sample sample = htntp::makeSockSample(clock, receive, leap);
    const htntp::SysError result = wide_ ? client_.send(htntp::widenSockSample(sample)) : client_.send(sample);
    return Napi::Number::New(info.Env(), result.err);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    client_.close();
    return info.Env().Undefined();
  }

  Napi::Value Connected(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), client_.connected()); }

  htntp::SockClient client_;
  bool wide_ = false;
};

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
    if (!info[0].IsString()) throw invalidArgType(info[0], "pem", "of type string");
    store_ = std::make_unique<htntp::TrustStore>(info[0].As<Napi::String>().Utf8Value());
  }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(store_->size()));
  }

  // verify(ders: Buffer[], host: string, atSeconds: number) -> { ok, code, message, depth, path }
  Napi::Value Verify(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw invalidArgType(info[0], "ders", "an array of Buffers");
    if (!info[1].IsString()) throw invalidArgType(info[1], "host", "of type string");
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
  exports.Set("SockClient", SockClient::Init(env));
  exports.Set("TrustStore", TrustStore::Init(env));
  exports.Set("readRealtime", Napi::Function::New(env, ReadRealtime, "readRealtime"));
  exports.Set("readMonotonicRaw", Napi::Function::New(env, ReadMonotonicRaw, "readMonotonicRaw"));
  exports.Set("readMonotonicRawMs", Napi::Function::New(env, ReadMonotonicRawMs, "readMonotonicRawMs"));
  exports.Set("readClockState", Napi::Function::New(env, ReadClockState, "readClockState"));
  exports.Set("statUnit", Napi::Function::New(env, StatUnit, "statUnit"));
  exports.Set("unitShmId", Napi::Function::New(env, UnitShmId, "unitShmId"));
  exports.Set("layout", Layout(env));
  exports.Set("sockLayout", SockLayout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(htntp, Init)
