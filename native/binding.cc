// The only file that knows N-API: argument checks, errors and object shapes around
// the plain segment code in shm_segment.cc.
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include "shm_segment.h"

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

// Node's own wording and codes for bad arguments.
int64_t toInteger(const Napi::Value& value, const char* name, int64_t min, int64_t max) {
  const Napi::Env env = value.Env();
  if (!value.IsNumber()) {
    throw codedError(Napi::TypeError::New(env, std::string("The \"") + name +
                                                    "\" argument must be of type number. Received " +
                                                    describe(value)),
                     "ERR_INVALID_ARG_TYPE");
  }
  const double number = value.As<Napi::Number>().DoubleValue();
  const double low = std::fmax(static_cast<double>(min), -kMaxSafeInteger);
  const double high = std::fmin(static_cast<double>(max), kMaxSafeInteger);
  if (!std::isfinite(number) || std::trunc(number) != number || number < low || number > high) {
    char range[96];
    std::snprintf(range, sizeof range, "an integer >= %.0f && <= %.0f", low, high);
    throw codedError(Napi::RangeError::New(env, std::string("The value of \"") + name +
                                                     "\" is out of range. It must be " + range +
                                                     ". Received " + value.ToString().Utf8Value()),
                     "ERR_OUT_OF_RANGE");
  }
  return static_cast<int64_t>(number);
}

// errno and syscall as Node puts them on its system errors (errno negative); the
// TypeScript side adds `code` and a hint.
Napi::Error systemError(Napi::Env env, const htntp::SysError& failure) {
  Napi::Error error = Napi::Error::New(env, std::string(failure.syscall) + " failed: " + std::strerror(failure.err));
  error.Set("errno", Napi::Number::New(env, -failure.err));
  error.Set("syscall", failure.syscall);
  return error;
}

Napi::Object timespecObject(Napi::Env env, const htntp::Timespec& time) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("sec", Napi::Number::New(env, static_cast<double>(time.sec)));
  out.Set("nsec", Napi::Number::New(env, static_cast<double>(time.nsec)));
  return out;
}

htntp::Timespec readClock(Napi::Env env, clockid_t clock) {
  htntp::Timespec now{};
  if (const htntp::SysError failure = htntp::clockNow(clock, &now)) throw systemError(env, failure);
  return now;
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

  // Every argument is checked before the first byte is written.
  htntp::Sample sampleArgs(const Napi::CallbackInfo& info, bool withReceive) {
    const htntp::FieldInfo& seconds = htntp::fieldInfo(Field::clockTimeStampSec);
    htntp::Sample sample{};
    int next = 0;
    sample.clock.sec = toInteger(info[next++], "clockTime.sec", 0, seconds.max);
    sample.clock.nsec = toInteger(info[next++], "clockTime.nsec", 0, 999999999);
    if (withReceive) {
      sample.receive.sec = toInteger(info[next++], "receiveTime.sec", 0, seconds.max);
      sample.receive.nsec = toInteger(info[next++], "receiveTime.nsec", 0, 999999999);
    }
    sample.leap = static_cast<int>(toInteger(info[next++], "leap", 0, 3));
    const htntp::FieldInfo& precision = htntp::fieldInfo(Field::precision);
    sample.precision = static_cast<int>(toInteger(info[next++], "precision", precision.min, precision.max));
    requireWritable(info.Env());
    return sample;
  }

  // write(clockSec, clockNsec, receiveSec, receiveNsec, leap, precision)
  Napi::Value Write(const Napi::CallbackInfo& info) {
    segment_.write(sampleArgs(info, true));
    return info.Env().Undefined();
  }

  // writeNow(clockSec, clockNsec, leap, precision): receive = CLOCK_REALTIME, read here
  Napi::Value WriteNow(const Napi::CallbackInfo& info) {
    htntp::Sample sample = sampleArgs(info, false);
    sample.receive = readClock(info.Env(), CLOCK_REALTIME);
    segment_.write(sample);
    return info.Env().Undefined();
  }

  Napi::Value Snapshot(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    requireAttached(env);
    const htntp::Snapshot snapshot = segment_.snapshot();
    Napi::Object out = Napi::Object::New(env);
    for (int i = 0; i < htntp::kFieldCount; ++i) {
      out.Set(htntp::fieldInfo(static_cast<Field>(i)).name, Napi::Number::New(env, static_cast<double>(snapshot.values[i])));
    }
    out.Set("consistent", Napi::Boolean::New(env, snapshot.consistent));
    out.Set("retries", Napi::Number::New(env, snapshot.retries));
    return out;
  }

  Napi::Value Stat(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    requireAttached(env);
    htntp::SegmentStat stat{};
    if (const htntp::SysError failure = segment_.stat(&stat)) throw systemError(env, failure);
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

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    requireAttached(info.Env());
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

Napi::Value Realtime(const Napi::CallbackInfo& info) {
  return timespecObject(info.Env(), readClock(info.Env(), CLOCK_REALTIME));
}

Napi::Value MonotonicRaw(const Napi::CallbackInfo& info) {
  return timespecObject(info.Env(), readClock(info.Env(), htntp::monotonicRawClock()));
}

// Both clocks back to back, for turning a raw-monotonic estimate into a sample.
Napi::Value ClockPair(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const htntp::Timespec monotonicRaw = readClock(env, htntp::monotonicRawClock());
  const htntp::Timespec realtime = readClock(env, CLOCK_REALTIME);
  Napi::Object out = Napi::Object::New(env);
  out.Set("monotonicRaw", timespecObject(env, monotonicRaw));
  out.Set("realtime", timespecObject(env, realtime));
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Segment", Segment::Init(env));
  exports.Set("realtime", Napi::Function::New<Realtime>(env, "realtime"));
  exports.Set("monotonicRaw", Napi::Function::New<MonotonicRaw>(env, "monotonicRaw"));
  exports.Set("clockPair", Napi::Function::New<ClockPair>(env, "clockPair"));
  exports.Set("layout", Layout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(htntp, Init)
