// The SHM segments as plain objects, read without disturbing anyone: attaches read-only
// (SHM_RDONLY), never creates a segment, never clears `valid`.
import { systemClock, type Clock } from './clock.js';
import { MAX_UNIT, NtpdShm, everWritten, keyText, snapshotTimes, type ShmSnapshot } from './shm.js';
import { diffSeconds, formatUtc, type Timespec } from './time.js';
import { formatTaiReport, loadLeapSeconds, taiReport, type TaiReport } from './leap.js';
import { STALE_SAMPLE_SECONDS } from './sample.js';

/**
 * consuming: a reader took the last sample while its writer was attached (valid went 1 -> 0
 * between two looks, or valid 0 with at least two other processes attached: a writer and
 * a reader);
 * waiting: a sample is there (valid 1) that no reader has taken yet;
 * idle: valid 0 and no sample offered: the writer stopped (it clears valid on a clean
 * stop), says "not in sync" (leap 3), or fewer than two processes are attached;
 * unknown: nothing written yet, a write in progress (odd count), or mode 0.
 */
export type ReaderState = 'consuming' | 'waiting' | 'idle' | 'unknown';

export interface UnitStatus {
  unit: number;
  key: string;
  shmId: number;
  mode: number;
  count: number;
  valid: number;
  /** false: no sample was ever written (count 0, both timestamps 0): times, offset and age are null */
  written: boolean;
  /** ISO 8601 UTC, nanoseconds: the reference time of the sample */
  clockTime: string | null;
  /** ISO 8601 UTC, nanoseconds: the local time the sample was taken */
  receiveTime: string | null;
  clock: Timespec | null;
  receive: Timespec | null;
  /** clock - receive, seconds (exact to the nanosecond, from the two Timespecs) */
  offset: number | null;
  /** realtime now - receive, seconds */
  age: number | null;
  /** A sample older than the stale limit: daemons drop it, and its writer has stopped writing. */
  stale: boolean;
  leap: number;
  precision: number;
  nsamples: number;
  /** count stood still across the copy */
  consistent: boolean;
  reader: ReaderState;
  /** With --watch: valid was seen going from 1 to 0 with count unchanged. */
  readerSeen: boolean;
  /** IPC_STAT */
  size: number;
  perm: string;
  uid: number;
  creatorUid: number;
  creatorPid: number;
  lastPid: number;
  /** Processes attached, not counting this status itself */
  attached: number;
  /** The clock time as TAI and the pending leap second, from the leap file (absent without one). */
  tai?: TaiReport;
}

export interface UnitError {
  unit: number;
  key: string;
  error: { code: string; message: string };
}

export type UnitReport = UnitStatus | UnitError;

export interface StatusResult {
  units: UnitReport[];
  /** Units asked for that have no segment. */
  missing: number[];
}

export interface StatusOptions {
  /** Units to show; default every unit 0..255 that exists. */
  units?: readonly number[];
  clock?: Clock;
  /** The previous round of a watch, for readerSeen. */
  previous?: StatusResult;
  /** leap-seconds.list for the TAI line (none without). */
  leapfile?: string;
  /** Seconds after which a written sample is stale (default STALE_SAMPLE_SECONDS). */
  staleAfter?: number;
}

/** `others`: processes attached besides the one looking. */
function readerState(snapshot: ShmSnapshot, others: number, readerSeen: boolean): ReaderState {
  if (readerSeen) return 'consuming';
  if (snapshot.mode !== 1 || !everWritten(snapshot) || snapshot.count % 2 !== 0) return 'unknown';
  if (snapshot.valid !== 0) return 'waiting';
  return snapshot.leap === 3 || others < 2 ? 'idle' : 'consuming';
}

function unitStatus(shm: NtpdShm, clock: Clock, previous: UnitReport | undefined, staleAfter: number): UnitStatus {
  const snapshot = shm.snapshot();
  const stat = shm.stat();
  const now = clock.realtime();
  const { clockTime, receiveTime } = snapshotTimes(snapshot);
  const written = everWritten(snapshot);
  let readerSeen = false;
  if (previous !== undefined && 'valid' in previous) {
    // The same sample, taken between two looks: a reader is consuming for sure.
    readerSeen =
      previous.readerSeen || (previous.valid === 1 && snapshot.valid === 0 && previous.count === snapshot.count);
  }
  const reader = readerState(snapshot, stat.nattch - 1, readerSeen);
  const age = written ? diffSeconds(now, receiveTime) : null;
  return {
    unit: shm.unit,
    key: keyText(shm.unit),
    shmId: shm.shmId,
    mode: snapshot.mode,
    count: snapshot.count,
    valid: snapshot.valid,
    written,
    clockTime: written ? formatUtc(clockTime) : null,
    receiveTime: written ? formatUtc(receiveTime) : null,
    clock: written ? clockTime : null,
    receive: written ? receiveTime : null,
    offset: written ? diffSeconds(clockTime, receiveTime) : null,
    age,
    stale: age !== null && age > staleAfter,
    leap: snapshot.leap,
    precision: snapshot.precision,
    nsamples: snapshot.nsamples,
    consistent: snapshot.consistent,
    reader,
    readerSeen,
    size: stat.size,
    perm: `0${stat.perm.toString(8)}`,
    uid: stat.uid,
    creatorUid: stat.cuid,
    creatorPid: stat.cpid,
    lastPid: stat.lpid,
    attached: stat.nattch - 1,
  };
}

/** One look at the units: plain objects, read-only, nothing created or cleared. */
export function readStatus(options: StatusOptions = {}): StatusResult {
  const { clock = systemClock, previous, staleAfter = STALE_SAMPLE_SECONDS } = options;
  const asked = options.units !== undefined;
  const units = options.units ?? Array.from({ length: MAX_UNIT + 1 }, (_, unit) => unit);
  const result: StatusResult = { units: [], missing: [] };
  const leap =
    options.leapfile === undefined ? undefined : { file: options.leapfile, table: loadLeapSeconds(options.leapfile) };
  for (const unit of [...new Set(units)]) {
    let shm: NtpdShm;
    try {
      shm = new NtpdShm({ unit, create: false, readOnly: true });
    } catch (error) {
      const { code = 'ERROR', message } = error as NodeJS.ErrnoException;
      if (code === 'ENOENT') {
        if (asked) result.missing.push(unit);
      } else {
        result.units.push({ unit, key: keyText(unit), error: { code, message } });
      }
      continue;
    }
    try {
      const status = unitStatus(
        shm,
        clock,
        previous?.units.find((report) => report.unit === unit),
        staleAfter,
      );
      if (leap !== undefined && status.clock !== null) status.tai = taiReport(leap, status.clock);
      result.units.push(status);
    } finally {
      shm.detach();
    }
  }
  return result;
}

const READER_TEXT: Record<ReaderState, string> = {
  consuming: 'consuming (valid went back to 0 after a write, a writer attached)',
  waiting: 'not consuming yet (a sample is waiting, valid 1)',
  idle: 'no sample offered (valid 0: the writer stopped, is not in sync, or no reader is attached)',
  unknown: 'unknown (no complete sample, or mode 0)',
};

export function formatStatus(result: StatusResult): string {
  const blocks = result.units.map((report) => {
    if ('error' in report) return `unit ${report.unit} (key ${report.key}): ${report.error.message}`;
    const seconds = (value: number | null): string =>
      value === null ? '-' : `${value >= 0 ? '+' : ''}${value.toFixed(9)} s`;
    const never = 'never written';
    return [
      `unit ${report.unit}${report.stale ? ' [stale]' : ''} (key ${report.key}, shmid ${report.shmId}` +
        `, ${report.size} bytes, perm ${report.perm}, owner uid ${report.uid}, creator pid ${report.creatorPid}` +
        `, ${report.attached} other processes attached, last pid ${report.lastPid})`,
      `  mode ${report.mode}  count ${report.count}  valid ${report.valid}  leap ${report.leap}  ` +
        `precision ${report.precision}  nsamples ${report.nsamples}` +
        `${report.consistent ? '' : '  (copy inconsistent: a writer kept moving count)'}`,
      `  clock    ${report.clockTime ?? never}`,
      `  receive  ${report.receiveTime ?? never}`,
      `  offset   ${seconds(report.offset)}${report.offset === null ? '' : ' (clock - receive)'}`,
      `  age      ${report.age === null ? '-' : `${report.age.toFixed(3)} s`}` +
        `${report.stale ? '  STALE: no fresh sample; daemons drop it (is the feeder running?)' : ''}`,
      ...(report.tai === undefined ? [] : [`  TAI      ${formatTaiReport(report.tai)}`]),
      `  reader   ${READER_TEXT[report.reader]}${report.readerSeen ? ' [seen]' : ''}`,
    ].join('\n');
  });
  if (blocks.length === 0) blocks.push('no SHM refclock segments');
  return `${blocks.join('\n\n')}\n`;
}

/** Units a `--check` fails on: unreadable, never written, or stale. */
export function failedChecks(result: StatusResult): UnitReport[] {
  return result.units.filter((report) => 'error' in report || !report.written || report.stale);
}

export function missingMessage(unit: number): string {
  return `htntp status: unit ${unit} has no segment (key ${keyText(unit)}): nothing has created it yet`;
}
