// Public library API.
export { NtpdShm, layout, keyOfUnit, defaultPerm, DEFAULT_PRECISION, MAX_UNIT } from './shm.js';
export type { NtpdShmOptions, UpdateOptions, ShmSnapshot, ShmStat, Leap } from './shm.js';
export { realtime, monotonicRaw, systemClock } from './clock.js';
export type { Clock } from './clock.js';
export type { Time, Timespec } from './time.js';
export type { Sample, SampleSource } from './sample.js';
export { feed } from './feeder.js';
export type { FeedOptions, FeedResult } from './feeder.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger, LogLevel, LogFields, LoggerOptions } from './log.js';
export { measureOffset } from './sources/http/measure.js';
export type { MeasureOptions, MeasurementResult, ServerResult as HttpServerResult } from './sources/http/measure.js';
export { FixedSource, type FixedSourceOptions } from './sources/fixed/index.js';
export { refclockLines, REFCLOCK_DAEMONS, type RefclockConfigOptions, type RefclockDaemon } from './refclock-config.js';
