// The one source of the refclock lines for ntpd, ntpsec and chrony: `htntp config`,
// ntp.conf.example and the end-to-end tests all print or use what this returns.
import { defaultPerm, MAX_UNIT } from './shm.js';
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js';
import { isRootOnlyUnit } from './shm.js';
import { MAX_PRECISION, MIN_PRECISION } from './sample.js';
import { checkSockPath } from './sock.js';

/** 'ntpd' = classic ntp 4.2.x (`server 127.127.28.N` + `fudge`). */
export type RefclockDaemon = 'ntpd' | 'ntpsec' | 'chrony';
export const REFCLOCK_DAEMONS: readonly RefclockDaemon[] = ['ntpd', 'ntpsec', 'chrony'];

export interface RefclockConfigOptions {
  daemon: RefclockDaemon;
  unit: number;
  /** Up to 4 characters, shown by ntpq/chronyc. */
  refid: string;
  /** Seconds added to every sample (ntpd `time1`, chrony `offset`): a known constant error. */
  offset?: number;
  /** log2 seconds between polls (ntpd minpoll = maxpoll, chrony poll). Default 4. */
  poll?: number;
  /** Show the source but never synchronise to it. */
  noselect?: boolean;
  prefer?: boolean;
  stratum?: number;
  /** chrony only (it ignores the segment's precision field): log2 seconds, like htntp's --precision. */
  precision?: number;
  /** chrony only: the assumed delay, seconds. */
  delay?: number;
  /** Segment permissions when the daemon creates it. Default the ntpd convention: 0600 for units 0-1, 0666 above. */
  perm?: number;
  /** chrony only: register this SOCK socket path (`refclock SOCK`) instead of the unit's segment. */
  sock?: string;
  /**
   * A PPS device (/dev/ppsN) whose pulse the daemon reads itself: the unit then only
   * numbers the seconds and the pulse is the preferred source (see ppsPairingLines).
   */
  pps?: string;
}

/** What feeds the unit: each kind has its refid and, for chrony, its delay and precision. */
export type SourceKind = 'http' | 'gps' | 'fixed';
export const SOURCE_KINDS: readonly SourceKind[] = ['http', 'gps', 'fixed'];

type Preset = Pick<RefclockConfigOptions, 'refid' | 'noselect' | 'stratum' | 'delay' | 'precision'>;

/**
 * The lines each source kind needs. chrony ignores the segment's precision field, so it
 * is told here: HTTP 2^-10 s with delay 0.2 s (NTP servers, where reachable, outrank it),
 * NMEA time 2^-5 s (sentence timing jitters by tens of ms). The fixed test clock is never
 * selected. ntpd and ntpsec read precision from each sample and take no delay.
 */
export const SOURCE_PRESETS: Readonly<Record<SourceKind, Preset>> = {
  http: { refid: 'HTTP', delay: 0.2, precision: -10 },
  gps: { refid: 'GPS', precision: -5 },
  fixed: { refid: 'FIX', noselect: true, stratum: 10 },
};

/**
 * Options for `source`'s lines in `daemon`, with `overrides` (explicit options) winning;
 * chrony-only options are left out for ntpd and ntpsec.
 */
export function presetOptions(
  source: SourceKind,
  base: Pick<RefclockConfigOptions, 'daemon' | 'unit'> & Partial<RefclockConfigOptions>,
): RefclockConfigOptions {
  if (!SOURCE_KINDS.includes(source)) throw outOfRange('source', `one of ${SOURCE_KINDS.join(', ')}`, source);
  const { delay, precision, ...common } = SOURCE_PRESETS[source];
  const chronyOnly =
    base.daemon === 'chrony'
      ? { ...(delay === undefined ? {} : { delay }), ...(precision === undefined ? {} : { precision }) }
      : {};
  const merged: RefclockConfigOptions = { ...common, ...chronyOnly, ...base };
  // An explicit --prefer replaces the preset's noselect rather than clashing with it.
  if (base.prefer === true && base.noselect === undefined) delete merged.noselect;
  return merged;
}

/** minpoll/poll ranges each daemon accepts for a refclock. */
const POLL_RANGE: Record<RefclockDaemon, [number, number]> = { ntpd: [3, 17], ntpsec: [0, 17], chrony: [-6, 17] };

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'number', value);
  if (!Number.isInteger(value) || value < min || value > max)
    throw outOfRange(name, `an integer >= ${min} && <= ${max}`, value);
  return value;
}

function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'number', value);
  if (!Number.isFinite(value) || value < min || value > max)
    throw outOfRange(name, `a finite number >= ${min} && <= ${max}`, value);
  return value;
}

/** Plain decimal seconds (chrony and ntpd both parse them; no exponent for small offsets). */
function seconds(value: number): string {
  return Number.isInteger(value) ? value.toFixed(1) : value.toFixed(9).replace(/0+$/, '');
}

function octal(perm: number): string {
  return `0${perm.toString(8).padStart(3, '0')}`;
}

/** The config lines that register unit `unit` in `daemon`. Throws TypeError/RangeError on bad options. */
export function refclockLines(options: RefclockConfigOptions): string[] {
  if (options.pps !== undefined) return ppsPairingLines(options);
  const { daemon, noselect = false, prefer = false } = options;
  if (!REFCLOCK_DAEMONS.includes(daemon)) throw outOfRange('daemon', `one of ${REFCLOCK_DAEMONS.join(', ')}`, daemon);
  const unit = checkInteger('unit', options.unit, 0, MAX_UNIT);
  const refid = options.refid;
  if (typeof refid !== 'string') throw invalidArgType('refid', 'string', refid);
  if (!/^[\x21-\x7e]{1,4}$/.test(refid))
    throw outOfRange('refid', '1 to 4 printable ASCII characters', JSON.stringify(refid));
  const offset = checkNumber('offset', options.offset ?? 0, -86_400, 86_400);
  const [minPoll, maxPoll] = POLL_RANGE[daemon];
  const poll = checkInteger('poll', options.poll ?? 4, minPoll, maxPoll);
  const stratum = options.stratum === undefined ? undefined : checkInteger('stratum', options.stratum, 0, 15);
  const perm = checkInteger('perm', options.perm ?? defaultPerm(unit), 0, 0o777);
  if (noselect && prefer) throw invalidArgValue('noselect and prefer exclude each other');
  const selection = noselect ? ['noselect'] : prefer ? ['prefer'] : [];

  if (daemon === 'chrony') {
    if (options.precision !== undefined) checkInteger('precision', options.precision, MIN_PRECISION, MAX_PRECISION);
    if (options.delay !== undefined) checkNumber('delay', options.delay, 0, 10);
    // chrony creates every unit 0600; the ntpd convention (0666 above unit 1) needs :perm.
    const segment = perm === 0o600 ? `${unit}` : `${unit}:perm=${octal(perm)}`;
    // SOCK samples arrive when sent: no dpoll (it only paces reading a segment).
    const driver = options.sock === undefined ? `SHM ${segment}` : `SOCK ${checkSockPath(options.sock)}`;
    return [
      [
        `refclock ${driver} refid ${refid} poll ${poll}${options.sock === undefined ? ' dpoll 0' : ''} ` +
          `offset ${seconds(offset)}`,
        ...(options.delay === undefined ? [] : [`delay ${options.delay}`]),
        ...(options.precision === undefined ? [] : [`precision ${2 ** options.precision}`]),
        ...(stratum === undefined ? [] : [`stratum ${stratum}`]),
        ...selection,
      ].join(' '),
    ];
  }

  if (options.sock !== undefined) {
    throw invalidArgValue(`sock is a chrony option; ${daemon} reads the SHM segment only`);
  }
  // ntpd and ntpsec only know two permissions: 0600 for units 0-1; above, 0666 unless
  // "mode 1" (bit 0 = private segment; nothing to do with the segment's mode field).
  if (options.precision !== undefined || options.delay !== undefined) {
    throw invalidArgValue(`precision and delay are chrony options; ${daemon} takes the precision from each sample`);
  }
  if (perm !== 0o600 && perm !== 0o666) throw outOfRange('perm', `0600 or 0666 for ${daemon}`, octal(perm));
  if (isRootOnlyUnit(unit) && perm !== 0o600)
    throw outOfRange('perm', `0600 for units 0-1 in ${daemon} (root only)`, octal(perm));
  const mode = unit >= 2 && perm === 0o600 ? ['mode 1'] : [];
  const polls = `minpoll ${poll} maxpoll ${poll}`;
  if (daemon === 'ntpsec') {
    return [
      [
        `refclock shm unit ${unit} refid ${refid}`,
        ...(stratum === undefined ? [] : [`stratum ${stratum}`]),
        `time1 ${seconds(offset)}`,
        polls,
        ...mode,
        ...selection,
      ].join(' '),
    ];
  }
  const address = `127.127.28.${unit}`;
  // Classic ntpd drops SHM samples more than 4 h off unless flag1 is set; a clock that far
  // off is what HTTP(S) bootstrapping is for. (ntpsec reversed flag1: it checks only with it.)
  return [
    [`server ${address}`, polls, ...mode, ...selection].join(' '),
    [
      `fudge ${address} refid ${refid}`,
      ...(stratum === undefined ? [] : [`stratum ${stratum}`]),
      `time1 ${seconds(offset)}`,
      'flag1 1',
    ].join(' '),
  ];
}

/** The PPS source's refid in every daemon. */
export const PPS_REFID = 'PPS';
// NMEA seconds in chrony when a pulse is paired: the sentence lags the second by
// 0.1-0.9 s with ms of jitter, so a 0.2 s delay and 0.125 s precision (2^-3) keep it
// out of any role but numbering the pulses.
const NMEA_DELAY = 0.2;
const NMEA_PRECISION = -3;

/**
 * A unit paired with a PPS device. chrony: the unit `noselect` and the pulse locked to
 * it (`lock`), preferred. ntpd and ntpsec: the PPS driver (22) only counts while a
 * `prefer` peer numbers the seconds, so the unit is `prefer` and the pulse a driver 22
 * source (ntpsec `refclock pps`, classic `server 127.127.22.K`, which reads /dev/ppsK).
 */
export function ppsPairingLines(options: RefclockConfigOptions): string[] {
  const { pps, daemon } = options;
  if (typeof pps !== 'string') throw invalidArgType('pps', 'string', pps);
  if (!/^\/[^\s"#;]+$/.test(pps))
    throw outOfRange('pps', 'an absolute device path without spaces, quotes, # or ;', JSON.stringify(pps));
  if (options.refid === PPS_REFID)
    throw outOfRange('refid', `a refid other than ${PPS_REFID} (the pulse's own)`, JSON.stringify(options.refid));
  const { pps: _pps, ...unit } = options;
  const pollWords = (lines: string[]): string => /minpoll \d+ maxpoll \d+/.exec(lines[0] ?? '')?.[0] ?? '';
  if (daemon === 'chrony') {
    const nmea = refclockLines({
      ...unit,
      noselect: true,
      prefer: false,
      delay: options.delay ?? NMEA_DELAY,
      precision: options.precision ?? NMEA_PRECISION,
    });
    const poll = options.poll === undefined ? [] : [`poll ${options.poll}`];
    return [
      ...nmea,
      [
        `refclock PPS ${pps} lock ${options.refid} refid ${PPS_REFID}`,
        ...poll,
        ...(options.noselect ? ['noselect'] : ['prefer']),
      ].join(' '),
    ];
  }
  const nmea = refclockLines({ ...unit, noselect: options.noselect ?? false, prefer: !(options.noselect ?? false) });
  const polls = pollWords(nmea);
  const ppsUnitMatch = /^\/dev\/pps(\d+)$/.exec(pps);
  const ppsUnit = ppsUnitMatch === null ? 0 : Number(ppsUnitMatch[1]);
  if (daemon === 'ntpsec') {
    const path = ppsUnitMatch === null ? [`path ${pps}`] : [];
    return [...nmea, [`refclock pps unit ${ppsUnit}`, ...path, `refid ${PPS_REFID}`, polls].join(' ')];
  }
  // Classic ntpd's driver 22 opens /dev/ppsK and nothing else.
  if (ppsUnitMatch === null || ppsUnit > 255) {
    throw outOfRange(
      'pps',
      `/dev/ppsK for classic ntpd (link the device there: ln -s ${pps} /dev/pps0)`,
      JSON.stringify(pps),
    );
  }
  const address = `127.127.22.${ppsUnit}`;
  return [...nmea, `server ${address} ${polls}`, `fudge ${address} refid ${PPS_REFID}`];
}

/** ntpd-rs reads chrony's SOCK datagrams only (no SHM): it is configured apart. */
export const NTPD_RS = 'ntpd-rs';

export interface NtpdRsSourceOptions {
  /** The socket ntpd-rs binds and the feeder's --sock sends to. */
  sock: string;
  /** The samples' 1-sigma error, seconds (ntpd-rs's required `precision`). */
  error: number;
  /** htntp is the only source: ntpd-rs's minimum-agreeing-sources (default 3) would never be met. */
  onlySource?: boolean;
}

/** A TOML basic string: the path in quotes, with backslash and quote escaped. */
function tomlString(value: string): string {
  return `"${value.replace(/[\\"]/g, (character) => `\\${character}`)}"`;
}

/**
 * The 1-sigma error of a source kind's samples for ntpd-rs, seconds: the precision's
 * width plus half chrony's assumed delay (the round trip the HTTP Date can sit anywhere in).
 */
export function presetError(source: SourceKind, precision?: number): number {
  const preset = SOURCE_PRESETS[source];
  const log2 = precision ?? preset.precision ?? -10;
  return 2 ** log2 + (preset.delay ?? 0) / 2;
}

/**
 * The ntp.toml lines of an htntp SOCK source in ntpd-rs (`[[source]] mode = "sock"`). With
 * `onlySource`, the [synchronization] table that lets one source set the clock. Throws
 * TypeError/RangeError on bad options.
 */
export function ntpdRsSourceLines(options: NtpdRsSourceOptions): string[] {
  const path = checkSockPath(options.sock);
  if ([...path].some((character) => character < ' ' || character === '\u007f'))
    throw outOfRange('sock', 'a path without control characters', JSON.stringify(path));
  const error = checkNumber('error', options.error, Number.MIN_VALUE, 10);
  const lines = ['[[source]]', 'mode = "sock"', `path = ${tomlString(path)}`, `precision = ${error}`];
  if (options.onlySource === true) return [...lines, '', '[synchronization]', 'minimum-agreeing-sources = 1'];
  return [
    ...lines,
    '# ntpd-rs steers only when minimum-agreeing-sources (default 3) sources agree: with htntp',
    '# as the only source, add under [synchronization]: minimum-agreeing-sources = 1',
  ];
}
