// Public library API.
export { NtpdShm, layout, keyOfUnit, keyText, defaultPerm, DEFAULT_PRECISION, MAX_UNIT } from './shm.js';
export type { NtpdShmOptions, UpdateOptions, ShmSnapshot, ShmStat, Leap } from './shm.js';
export { ChronySock, sockLayout } from './sock.js';
export type { SockLeap } from './sock.js';
export { realtime, monotonicRaw, systemClock, clockSync } from './clock.js';
export type { Clock, ClockSync } from './clock.js';
export type { Time, Timespec } from './time.js';
export type { Sample, SampleSource } from './sample.js';
export { feed } from './feeder.js';
export type { FeedOptions, FeedResult } from './feeder.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger, LogLevel, LogFields, LoggerOptions } from './log.js';
export { measureOffset } from './sources/http/measure.js';
export type { MeasureOptions, MeasurementResult, ServerResult as HttpServerResult } from './sources/http/measure.js';
export type { CertificateWindow, TlsTrust } from './sources/http/tls.js';
export { FixedSource, type FixedSourceOptions } from './sources/fixed/source.js';
export {
  GpsSource,
  NmeaSampler,
  parseLine as parseNmeaLine,
  type GpsSourceOptions,
  type SamplerOptions as NmeaSamplerOptions,
} from './sources/gps/index.js';
export { refclockLines, REFCLOCK_DAEMONS, type RefclockConfigOptions, type RefclockDaemon } from './refclock-config.js';
export { leapStatus, leapAt, parseLeapSeconds, loadLeapSeconds, LeapSchedule, DEFAULT_LEAPFILE } from './leap.js';
export type { LeapStatus, LeapTable, LeapEntry, TaiReport } from './leap.js';
export { ServiceMetrics, serveMetrics, noSourceMetrics } from './metrics.js';
export type { SourceMetrics, FixState, FeedMetrics, MetricsServer, MetricsAddress, ServerReport } from './metrics.js';
export { ServerClock } from './server-clock/server-clock.js';
export type {
  ServerClockOptions,
  ServerClockUpdate,
  ServerClockStep,
  ServerClockEvents,
  ServerClockSource,
  TimeProvider,
} from './server-clock/server-clock.js';
