// GPS NMEA source: public surface.
export { GpsSource, GPS_DEFAULTS, type GpsSourceOptions } from './source.js';
export { NmeaSampler, type SamplerOptions, type LineResult, type Notice, type Skip } from './sampler.js';
export {
  parseLine,
  checksumOf,
  withChecksum,
  type ParsedLine,
  type TimeSentence,
  type TimeOfDay,
  type NmeaDate,
} from './nmea.js';
export { DateTracker, datedTime, RELEASE_FLOOR, GPS_ROLLOVER_SECONDS } from './date.js';
export { LineSplitter, MAX_LINE_LENGTH, printableLine } from './lines.js';
export { BAUD_RATES, deviceError } from './serial.js';
