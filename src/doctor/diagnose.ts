// The verdict on one unit from what was seen: the segment (IPC_STAT, a read-only
// snapshot), the processes attached (by /proc maps), the daemons' config files and what
// the running daemons report. Pure: every fact comes in as data.
import {
  everWritten,
  layout,
  keyText,
  rootOnlyUnitConcern,
  snapshotTimes,
  type ShmSnapshot,
  type ShmStat,
} from '../shm.js';
import { diffSeconds, type Timespec } from '../time.js';
import type { ConfiguredUnit } from './daemon-config.js';
import type { Answer, ChronySource, ChronyView, NtpPeer } from './daemon-query.js';
import type { AttachedProcess, FeederProcess } from './processes.js';

/** A daemon configured for one unit while the only feeder writes another. */
export interface UnitMismatch {
  reads: ConfiguredUnit;
  writes: number;
  feeder: FeederProcess;
}

export type Severity = 'problem' | 'unchecked' | 'warning' | 'ok';
export type Verdict = 'healthy' | 'problem' | 'unknown';

export interface Finding {
  severity: Severity;
  /** Stable name of the finding, for scripts. */
  code: string;
  message: string;
  /** What to do, in words. */
  fix?: string;
}

export type SegmentFacts =
  | { state: 'absent' }
  | { state: 'unreadable'; error: string }
  | { state: 'present'; stat: ShmStat & { shmId: number }; snapshot?: ShmSnapshot };

export interface UnitFacts {
  unit: number;
  segment: SegmentFacts;
  /** Processes attached to the unit's current segment. */
  processes: AttachedProcess[];
  /** Processes attached to an earlier, removed segment of the same key. */
  stale: AttachedProcess[];
  /** /proc showed every process (root): absence of an attachment means something. */
  procComplete: boolean;
  configured: ConfiguredUnit[];
  /** The config files searched, for the messages. */
  configFiles: string[];
  /** undefined: not asked (no chrony config or process for this unit). */
  chrony?: Answer<ChronyView>;
  ntpd?: Answer<NtpPeer[]>;
  now: Timespec;
  /** A sample older than this (seconds) is stale. */
  maxAge: number;
  mismatch?: UnitMismatch;
}

export interface SampleView {
  written: boolean;
  valid: number;
  leap: number;
  precision: number;
  /** clock - receive, seconds */
  offset: number | null;
  /** now - receive, seconds */
  age: number | null;
}

export interface UnitDiagnosis {
  unit: number;
  key: string;
  verdict: Verdict;
  /** The finding that decided the verdict. */
  summary: string;
  fix?: string;
  findings: Finding[];
  segment: SegmentFacts['state'];
  size?: number;
  perm?: string;
  uid?: number;
  nattch?: number;
  processes: AttachedProcess[];
  stale: AttachedProcess[];
  sample?: SampleView;
  configured: ConfiguredUnit[];
  chrony?: ChronySource;
  ntpd?: NtpPeer;
}

const RANK: Record<Severity, number> = { problem: 0, unchecked: 1, warning: 2, ok: 3 };

function who(processes: readonly AttachedProcess[]): string {
  return processes.map((process) => `${process.name}[${process.pid}]`).join(', ');
}

function where(configured: readonly ConfiguredUnit[]): string {
  return configured
    .map(
      (entry) =>
        `${entry.file}:${entry.line} (${entry.daemon}${entry.refid === undefined ? '' : ` refid ${entry.refid}`})`,
    )
    .join(', ');
}

export function sampleView(snapshot: ShmSnapshot, now: Timespec): SampleView {
  const written = everWritten(snapshot);
  const { clockTime, receiveTime } = snapshotTimes(snapshot);
  return {
    written,
    valid: snapshot.valid,
    leap: snapshot.leap,
    precision: snapshot.precision,
    offset: written ? diffSeconds(clockTime, receiveTime) : null,
    age: written ? diffSeconds(now, receiveTime) : null,
  };
}

/** How far a daemon's offset may be from the published one and still agree, seconds. */
function tolerance(sample: SampleView, daemonError = 0): number {
  return 0.005 + 2 * 2 ** Math.min(sample.precision, 0) + Math.abs(daemonError);
}

/** A sample being published: fresh, written, in sync. */
type LiveSample = SampleView & { offset: number };

function daemonFindings(
  facts: UnitFacts,
  sample: SampleView | undefined,
  fresh: boolean,
  findings: Finding[],
): { chrony?: ChronySource; ntpd?: NtpPeer } {
  const live: LiveSample | undefined =
    fresh && sample !== undefined && sample.offset !== null && sample.leap !== 3
      ? { ...sample, offset: sample.offset }
      : undefined;
  const chrony = checkDaemon(chronyCheck(facts), facts, live, findings);
  const ntpd = checkDaemon(ntpdCheck(facts), facts, live, findings);
  return { ...(chrony === undefined ? {} : { chrony }), ...(ntpd === undefined ? {} : { ntpd }) };
}

/** A finding's words. */
type Said = Pick<Finding, 'message' | 'fix'>;

/**
 * How one daemon is checked against a unit's config entries: the same four findings for chronyd and ntpd
 * (`<daemon>-unreachable`, `-missing`, `-no-samples`, `-disagrees`), each in that daemon's words.
 */
interface DaemonCheck<View, Listed extends { reach: number }> {
  daemon: ConfiguredUnit['daemon'];
  /** The program's name in messages. */
  program: string;
  answer: Answer<View> | undefined;
  /** What the daemon calls the unit's source in its answers. */
  label: (entry: ConfiguredUnit) => string;
  /** The source or peer the daemon lists for a config entry. */
  find: (view: View, entry: ConfiguredUnit) => Listed | undefined;
  fixes: { unreachable: string; missing: string; noSamples: string };
  /** Words when the daemon's offset is not the published one, else undefined. */
  disagreement: (listed: Listed, entry: ConfiguredUnit, live: LiveSample, view: View) => Said | undefined;
}

/** Walks a daemon's check over this unit's entries for it; returns what the daemon lists. */
function checkDaemon<View, Listed extends { reach: number }>(
  check: DaemonCheck<View, Listed>,
  facts: UnitFacts,
  live: LiveSample | undefined,
  findings: Finding[],
): Listed | undefined {
  const { daemon, program, answer, fixes } = check;
  let seen: Listed | undefined;
  for (const entry of facts.configured.filter((configured) => configured.daemon === daemon)) {
    if (answer === undefined) continue;
    if (!answer.ok) {
      const message = `could not ask ${program}: ${answer.reason}`;
      findings.push({ severity: 'unchecked', code: `${daemon}-unreachable`, message, fix: fixes.unreachable });
      continue;
    }
    const listed = check.find(answer.value, entry);
    if (listed === undefined) {
      const message = `${program} does not list ${check.label(entry)} of ${entry.file}:${entry.line}`;
      findings.push({ severity: 'problem', code: `${daemon}-missing`, message, fix: fixes.missing });
      continue;
    }
    seen = listed;
    if (live === undefined) continue;
    if (listed.reach === 0) {
      const message =
        `${program} has accepted no sample from ${check.label(entry)} (reach 0) ` +
        'although fresh samples are published';
      findings.push({ severity: 'problem', code: `${daemon}-no-samples`, message, fix: fixes.noSamples });
      continue;
    }
    const disagreement = check.disagreement(listed, entry, live, answer.value);
    if (disagreement !== undefined)
      findings.push({ severity: 'problem', code: `${daemon}-disagrees`, ...disagreement });
  }
  return seen;
}

/** What chronyd says of each refclock of this unit in its config. */
const chronyCheck = (facts: UnitFacts): DaemonCheck<ChronyView, ChronySource> => ({
  daemon: 'chrony',
  program: 'chronyd',
  answer: facts.chrony,
  label: (entry) => `refid ${entry.refid ?? '?'}`,
  find: (view, entry) => view.sources.find((candidate) => candidate.mode === '#' && candidate.name === entry.refid),
  fixes: {
    unreachable:
      'run doctor as root where chronyd runs (chronyc needs its command socket; --chronyc-socket names it, ' +
      '--chronyc PATH the program)',
    missing: 'chronyd reads its config at start: restart it (systemctl restart chrony)',
    noSamples:
      'chronyd attached to another segment (restart it after the segment was recreated), or the samples are ' +
      'refused: see `chronyc sources -v` and its log',
  },
  disagreement: (source, entry, live, view) => {
    if (source.lastRx === undefined) return undefined;
    // chronyc: positive = local clock ahead of the source, the opposite of clock - receive;
    // the adjusted offset is against the clock as chronyd has corrected it since (or means to).
    const expected = -(live.offset + entry.offset) + view.correction;
    if (Math.abs(source.adjustedOffset - expected) > tolerance(live, source.error)) {
      return {
        message:
          `chronyd sees refid ${source.name} at ${source.adjustedOffset.toFixed(6)} s (local - source, as ` +
          `it corrected the clock) but ${expected.toFixed(6)} s is published: it reads another unit ` +
          `or adds an offset`,
        fix: `check that ${entry.file}:${entry.line} names unit ${facts.unit} and that its offset is meant`,
      };
    }
    return undefined;
  },
});

/** What ntpd says of this unit's SHM peer for each config entry. */
const ntpdCheck = (facts: UnitFacts): DaemonCheck<NtpPeer[], NtpPeer> => ({
  daemon: 'ntpd',
  program: 'ntpd',
  answer: facts.ntpd,
  label: () => `SHM(${facts.unit})`,
  find: (peers) => peers.find((candidate) => candidate.unit === facts.unit),
  fixes: {
    unreachable:
      'run doctor where ntpq can reach ntpd (same network namespace; ntpsec answers on loopback only with ' +
      '`restrict 127.0.0.1`), or name ntpq with --ntpq PATH',
    missing: 'ntpd reads its config at start: restart it',
    noSamples: 'restart ntpd if the segment was recreated; see its log for "stale" or "bad mode"',
  },
  disagreement: (peer, entry, live) => {
    const published = live.offset + entry.offset;
    if (Math.abs(peer.offset - published) > tolerance(live)) {
      return {
        message:
          `ntpd sees SHM(${facts.unit}) at ${peer.offset.toFixed(6)} s ` + `but ${published.toFixed(6)} s is published`,
        fix: `check the unit and time1 in ${entry.file}:${entry.line}`,
      };
    }
    return undefined;
  },
});

/** The findings one unit mismatch explains, on either of its two units. */
const EXPLAINED_BY_MISMATCH = new Set([
  'absent',
  'never-written',
  'not-configured',
  'config-not-found',
  'no-reader',
  'stale',
  'private',
  'writer-unknown',
]);

/** Replaces what the mismatch explains with the one fault and its one fix. */
function mismatchFinding(mismatch: UnitMismatch, findings: Finding[]): void {
  const { reads, writes, feeder } = mismatch;
  const daemon = reads.daemon === 'chrony' ? 'chronyd' : 'ntpd';
  const kept = findings.filter((finding) => !EXPLAINED_BY_MISMATCH.has(finding.code));
  findings.splice(0, findings.length, ...kept, {
    severity: 'problem',
    code: 'unit-mismatch',
    message:
      `${daemon} reads unit ${reads.unit} (${reads.file}:${reads.line}), ${feeder.name}[${feeder.pid}] ` +
      `writes unit ${writes}: one of them names the wrong unit`,
    fix:
      `make them the same: run the feeder with --unit ${reads.unit}, or change ${reads.file}:${reads.line} to ` +
      `unit ${writes} and restart ${daemon}`,
  });
}

/**
 * Sorts the findings worst first and derives the verdict: the worst finding's message and
 * fix, or `healthy` with the summary `describe` gives when nothing worse than a warning.
 */
export function finish(
  findings: Finding[],
  describe: () => string,
): { verdict: Verdict; summary: string; fix?: string } {
  findings.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  const first = findings[0];
  const verdict: Verdict =
    first?.severity === 'problem' ? 'problem' : first?.severity === 'unchecked' ? 'unknown' : 'healthy';
  if (verdict === 'healthy' || first === undefined) return { verdict, summary: describe() };
  return { verdict, summary: first.message, ...(first.fix === undefined ? {} : { fix: first.fix }) };
}

/** What the segment rules look at, computed once per unit. */
interface SegmentView {
  facts: UnitFacts;
  key: string;
  feeders: AttachedProcess[];
  readers: AttachedProcess[];
  /** The config files searched, for messages. */
  files: string;
  stat?: ShmStat & { shmId: number };
  sample?: SampleView;
  /** The sample is written and younger than maxAge. */
  fresh: boolean;
}

/** One rule of the segment's diagnosis: when it holds, a finding with this code, message and fix. */
interface SegmentRule {
  code: string;
  severity: Severity;
  when: (view: SegmentView) => boolean;
  message: (view: SegmentView) => string;
  fix?: (view: SegmentView) => string;
}

const present = (view: SegmentView): view is SegmentView & { stat: ShmStat & { shmId: number } } =>
  view.stat !== undefined;
const rightSize = (view: SegmentView): boolean => view.stat?.size === layout.size;
const age = (view: SegmentView): number => view.sample?.age ?? Infinity;
/** Fresh samples are written but no config file searched names the unit. */
const fedButNamedNowhere = (view: SegmentView): boolean =>
  present(view) && view.facts.configured.length === 0 && view.fresh && view.feeders.length > 0;

/**
 * The segment's rules, walked in order by diagnose(): each is a row (code, severity,
 * condition, message, fix). The daemons' own view (daemonFindings) and the processes on a
 * removed segment come apart, as they yield one finding per config line or process.
 */
const SEGMENT_RULES: readonly SegmentRule[] = [
  {
    code: 'absent',
    severity: 'problem',
    when: (view) => view.facts.segment.state === 'absent' && view.facts.configured.length > 0,
    message: (view) =>
      `unit ${view.facts.unit} is configured in ${where(view.facts.configured)} but no segment exists in ` +
      `this IPC namespace`,
    fix: (view) =>
      `start the feeder on unit ${view.facts.unit} (a feeder in a container needs the host's IPC namespace, ` +
      `--ipc=host); the daemon creates the segment when it starts, so a missing one also means it is not running`,
  },
  {
    code: 'absent',
    severity: 'problem',
    when: (view) =>
      view.facts.segment.state === 'absent' && view.facts.configured.length === 0 && view.facts.stale.length === 0,
    message: (view) =>
      `no segment exists for unit ${view.facts.unit} (key ${view.key}) and no config file names it ` +
      `(searched: ${view.files})`,
    fix: (view) => `nothing uses unit ${view.facts.unit}: check the unit number on both sides`,
  },
  {
    code: 'unreadable',
    severity: 'unchecked',
    when: (view) => view.facts.segment.state === 'unreadable',
    message: (view) =>
      `the segment cannot be read: ${view.facts.segment.state === 'unreadable' ? view.facts.segment.error : ''}`,
    fix: () => 'run htntp doctor as root',
  },
  {
    code: 'size',
    severity: 'problem',
    when: (view) => present(view) && !rightSize(view),
    message: (view) => {
      const maker =
        view.stat?.size === 80
          ? 'a 32-bit program made it (80 bytes is the struct with a 32-bit time_t)'
          : "it is another program's segment, or another ABI's";
      return `the segment is ${view.stat?.size} bytes, not ${layout.size} (sizeof(struct shmTime) here): ${maker}`;
    },
    fix: (view) =>
      `stop its users, remove it (ipcrm -M ${view.key}), then start the daemon and the feeder again (both built ` +
      `for this platform)`,
  },
  {
    code: 'not-root-only',
    severity: 'problem',
    when: (view) => present(view) && rootOnlyUnitConcern(view.facts.unit, view.stat) !== undefined,
    message: (view) =>
      (present(view) ? (rootOnlyUnitConcern(view.facts.unit, view.stat) ?? '') : '').replace(/: remove it.*$/, ''),
    fix: (view) => `remove it (ipcrm -M ${view.key}) and let root recreate it 0600`,
  },
  {
    code: 'two-writers',
    severity: 'problem',
    when: (view) => present(view) && view.feeders.length > 1,
    message: (view) =>
      `${view.feeders.length} feeders write unit ${view.facts.unit}: ${who(view.feeders)}; readers get a mix ` +
      `of their samples`,
    fix: () => 'stop all but one; give each feeder its own unit',
  },
  {
    code: 'hidden-attachments',
    severity: 'warning',
    when: (view) => present(view) && view.facts.procComplete && view.stat.nattch > view.facts.processes.length,
    message: (view) =>
      `${view.stat?.nattch} attachments but only ${view.facts.processes.length} visible processes: some attached ` +
      `processes live in another PID namespace (a container)`,
  },
  {
    code: 'never-written',
    severity: 'problem',
    when: (view) => view.sample !== undefined && !view.sample.written && view.feeders.length === 0,
    message: (view) =>
      `nothing has ever written unit ${view.facts.unit}` +
      `${view.readers.length > 0 ? ` (read by ${who(view.readers)})` : ''}`,
    fix: (view) => `start the feeder with --unit ${view.facts.unit}`,
  },
  {
    code: 'no-sample-yet',
    severity: 'warning',
    when: (view) => view.sample !== undefined && !view.sample.written && view.feeders.length > 0,
    message: (view) =>
      `${who(view.feeders)} is attached but has not published a sample yet (waiting for a fix or a first measurement)`,
  },
  {
    code: 'stale',
    severity: 'problem',
    when: (view) => view.sample?.written === true && !view.fresh,
    message: (view) =>
      `the last sample is ${age(view).toFixed(0)} s old (daemons drop samples older than a few ` +
      `seconds)${view.feeders.length === 0 && view.facts.procComplete ? ' and no feeder is attached' : ''}`,
    fix: (view) =>
      view.feeders.length === 0
        ? `start the feeder on unit ${view.facts.unit}`
        : `the feeder ${who(view.feeders)} publishes nothing: see its log`,
  },
  {
    code: 'not-in-sync',
    severity: 'warning',
    when: (view) => view.sample?.written === true && view.fresh && view.sample.leap === 3,
    message: () =>
      'the feeder says "not in sync" (leap 3): daemons ignore the source until it has a fix or an estimate',
  },
  {
    code: 'writer-unknown',
    severity: 'warning',
    when: (view) => view.facts.procComplete && view.feeders.length === 0 && view.sample?.written === true && view.fresh,
    message: () =>
      'fresh samples but no known feeder attached (a writer that attaches only to write, or in another PID namespace)',
  },
  {
    code: 'private',
    severity: 'warning',
    when: (view) =>
      present(view) &&
      view.facts.unit >= 2 &&
      (view.stat.perm & 0o022) === 0 &&
      view.feeders.length === 0 &&
      !view.fresh,
    message: (view) =>
      `the segment is 0${view.stat?.perm.toString(8)} owned by uid ${view.stat?.uid}: a feeder running as another ` +
      `user gets EACCES`,
    fix: (view) =>
      `run the feeder as uid ${view.stat?.uid}, or recreate the segment 0666 (chrony: refclock ` +
      `SHM ${view.facts.unit}:perm=0666)`,
  },
  {
    code: 'no-reader',
    severity: 'problem',
    when: (view) =>
      present(view) && view.facts.procComplete && view.facts.configured.length > 0 && view.readers.length === 0,
    message: (view) => `configured in ${where(view.facts.configured)} but no daemon is attached to the segment`,
    fix: () => 'the daemon is not running, or started before the segment was recreated: (re)start it',
  },
  {
    code: 'not-configured',
    severity: 'problem',
    when: (view) => fedButNamedNowhere(view) && view.readers.length === 0,
    message: (view) =>
      `fed by ${who(view.feeders)} but no daemon reads unit ${view.facts.unit} and no config file names it ` +
      `(searched: ${view.files})`,
    fix: (view) =>
      `add the lines of \`htntp config --daemon chrony|ntpsec|ntpd --unit ${view.facts.unit} --source ` +
      `http|gps|fixed\` and restart the daemon`,
  },
  {
    code: 'config-not-found',
    severity: 'warning',
    when: (view) => fedButNamedNowhere(view) && view.readers.length > 0,
    message: (view) =>
      `read by ${who(view.readers)} but none of the searched config files names unit ${view.facts.unit} ` +
      `(searched: ${view.files})`,
  },
];

/** A feeder or reader still mapping a removed segment of the same key: one finding each. */
function removedSegmentFindings(stale: readonly AttachedProcess[]): Finding[] {
  return stale.map((process) =>
    process.role === 'feeder'
      ? {
          severity: 'problem',
          code: 'writer-on-removed',
          message:
            `${process.name}[${process.pid}] writes a removed segment (shmid ${process.shmId}): no reader ` +
            `sees its samples`,
          fix: `restart it (kill ${process.pid}): it attaches the unit's current segment`,
        }
      : {
          severity: 'problem',
          code: 'reader-on-removed',
          message:
            `${process.name}[${process.pid}] still reads a removed segment (shmid ${process.shmId}): it sees ` +
            `none of the samples written now`,
          fix: `restart ${process.name}: daemons attach their segments once, at start`,
        },
  );
}

function segmentView(facts: UnitFacts): SegmentView {
  const { segment } = facts;
  const stat = segment.state === 'present' ? segment.stat : undefined;
  const sample =
    segment.state === 'present' && segment.snapshot !== undefined && segment.stat.size === layout.size
      ? sampleView(segment.snapshot, facts.now)
      : undefined;
  return {
    facts,
    key: keyText(facts.unit),
    feeders: facts.processes.filter((process) => process.role === 'feeder'),
    readers: facts.processes.filter((process) => process.role === 'reader'),
    files: facts.configFiles.length === 0 ? 'none found' : facts.configFiles.join(', '),
    stat,
    sample,
    fresh: sample !== undefined && sample.written && (sample.age ?? Infinity) <= facts.maxAge,
  };
}

export function diagnose(facts: UnitFacts): UnitDiagnosis {
  const { unit, segment } = facts;
  const view = segmentView(facts);
  const { key, feeders, readers, sample, fresh } = view;
  const configured = facts.configured;
  const findings: Finding[] = removedSegmentFindings(facts.stale);
  for (const rule of SEGMENT_RULES) {
    if (!rule.when(view)) continue;
    findings.push({
      severity: rule.severity,
      code: rule.code,
      message: rule.message(view),
      ...(rule.fix === undefined ? {} : { fix: rule.fix(view) }),
    });
  }

  if (facts.mismatch !== undefined) mismatchFinding(facts.mismatch, findings);
  const views = daemonFindings(facts, sample, fresh, findings);
  const { verdict, summary, fix } = finish(
    findings,
    () =>
      [
        feeders.length > 0 ? `fed by ${who(feeders)}` : undefined,
        readers.length > 0 ? `read by ${who(readers)}` : undefined,
        sample?.age !== null && sample?.age !== undefined ? `last sample ${sample.age.toFixed(1)} s ago` : undefined,
        views.chrony !== undefined
          ? `chronyd: ${views.chrony.name} reach ${views.chrony.reach.toString(8)} state ${views.chrony.state}`
          : undefined,
        views.ntpd !== undefined ? `ntpd: SHM(${unit}) reach ${views.ntpd.reach.toString(8)}` : undefined,
      ]
        .filter((part): part is string => part !== undefined)
        .join('; ') || 'nothing wrong seen',
  );
  const stat = segment.state === 'present' ? segment.stat : undefined;
  return {
    unit,
    key,
    verdict,
    summary,
    ...(fix === undefined ? {} : { fix }),
    findings,
    segment: segment.state,
    ...(stat === undefined
      ? {}
      : { size: stat.size, perm: `0${stat.perm.toString(8)}`, uid: stat.uid, nattch: stat.nattch }),
    processes: facts.processes,
    stale: facts.stale,
    ...(sample === undefined ? {} : { sample }),
    configured,
    ...views,
  };
}
