// The verdict on one unit from what was seen: the segment (IPC_STAT, a read-only
// snapshot), the processes attached (by /proc maps), the daemons' config files and what
// the running daemons report. Pure: every fact comes in as data.
import { everWritten, layout, keyText, rootOnlyUnitConcern, snapshotTimes, type ShmSnapshot, type ShmStat } from '../shm.js';
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
  return configured.map((entry) => `${entry.file}:${entry.line} (${entry.daemon}${entry.refid === undefined ? '' : ` refid ${entry.refid}`})`).join(', ');
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

function daemonFindings(facts: UnitFacts, sample: SampleView | undefined, fresh: boolean, findings: Finding[]): { chrony?: ChronySource; ntpd?: NtpPeer } {
  const seen: { chrony?: ChronySource; ntpd?: NtpPeer } = {};
  const feeding = fresh && sample !== undefined && sample.offset !== null && sample.leap !== 3;
  for (const entry of facts.configured.filter((configured) => configured.daemon === 'chrony')) {
    if (facts.chrony === undefined) continue;
    if (!facts.chrony.ok) {
      findings.push({ severity: 'unchecked', code: 'chrony-unreachable', message: `could not ask chronyd: ${facts.chrony.reason}`, fix: 'run doctor as root where chronyd runs (chronyc needs its command socket; --chronyc-socket names it, --chronyc PATH the program)' });
      continue;
    }
    const source = facts.chrony.value.sources.find((candidate) => candidate.mode === '#' && candidate.name === entry.refid);
    if (source === undefined) {
      findings.push({
        severity: 'problem',
        code: 'chrony-missing',
        message: `chronyd does not list refid ${entry.refid ?? '?'} of ${entry.file}:${entry.line}`,
        fix: 'chronyd reads its config at start: restart it (systemctl restart chrony)',
      });
      continue;
    }
    seen.chrony = source;
    if (!feeding || sample === undefined || sample.offset === null) continue;
    if (source.reach === 0) {
      findings.push({
        severity: 'problem',
        code: 'chrony-no-samples',
        message: `chronyd has accepted no sample from refid ${source.name} (reach 0) although fresh samples are published`,
        fix: 'chronyd attached to another segment (restart it after the segment was recreated), or the samples are refused: see `chronyc sources -v` and its log',
      });
    } else if (source.lastRx !== undefined) {
      // chronyc: positive = local clock ahead of the source, the opposite of clock - receive;
      // the adjusted offset is against the clock as chronyd has corrected it since (or means to).
      const expected = -(sample.offset + entry.offset) + facts.chrony.value.correction;
      const difference = source.adjustedOffset - expected;
      if (Math.abs(difference) > tolerance(sample, source.error)) {
        findings.push({
          severity: 'problem',
          code: 'chrony-disagrees',
          message: `chronyd sees refid ${source.name} at ${source.adjustedOffset.toFixed(6)} s (local - source, as it corrected the clock) but ${expected.toFixed(6)} s is published: it reads another unit or adds an offset`,
          fix: `check that ${entry.file}:${entry.line} names unit ${facts.unit} and that its offset is meant`,
        });
      }
    }
  }
  for (const entry of facts.configured.filter((configured) => configured.daemon === 'ntpd')) {
    if (facts.ntpd === undefined) continue;
    if (!facts.ntpd.ok) {
      findings.push({ severity: 'unchecked', code: 'ntpd-unreachable', message: `could not ask ntpd: ${facts.ntpd.reason}`, fix: 'run doctor where ntpq can reach ntpd (same network namespace; ntpsec answers on loopback only with `restrict 127.0.0.1`), or name ntpq with --ntpq PATH' });
      continue;
    }
    const peer = facts.ntpd.value.find((candidate) => candidate.unit === facts.unit);
    if (peer === undefined) {
      findings.push({ severity: 'problem', code: 'ntpd-missing', message: `ntpd does not list SHM(${facts.unit}) of ${entry.file}:${entry.line}`, fix: 'ntpd reads its config at start: restart it' });
      continue;
    }
    seen.ntpd = peer;
    if (!feeding || sample === undefined || sample.offset === null) continue;
    if (peer.reach === 0) {
      findings.push({ severity: 'problem', code: 'ntpd-no-samples', message: `ntpd has accepted no sample from SHM(${facts.unit}) (reach 0) although fresh samples are published`, fix: 'restart ntpd if the segment was recreated; see its log for "stale" or "bad mode"' });
    } else if (Math.abs(peer.offset - (sample.offset + entry.offset)) > tolerance(sample)) {
      findings.push({
        severity: 'problem',
        code: 'ntpd-disagrees',
        message: `ntpd sees SHM(${facts.unit}) at ${peer.offset.toFixed(6)} s but ${(sample.offset + entry.offset).toFixed(6)} s is published`,
        fix: `check the unit and time1 in ${entry.file}:${entry.line}`,
      });
    }
  }
  return seen;
}

/** The findings one unit mismatch explains, on either of its two units. */
const EXPLAINED_BY_MISMATCH = new Set(['absent', 'never-written', 'not-configured', 'config-not-found', 'no-reader', 'stale', 'private', 'writer-unknown']);

/** Replaces what the mismatch explains with the one fault and its one fix. */
function mismatchFinding(mismatch: UnitMismatch, findings: Finding[]): void {
  const { reads, writes, feeder } = mismatch;
  const daemon = reads.daemon === 'chrony' ? 'chronyd' : 'ntpd';
  const kept = findings.filter((finding) => !EXPLAINED_BY_MISMATCH.has(finding.code));
  findings.splice(0, findings.length, ...kept, {
    severity: 'problem',
    code: 'unit-mismatch',
    message: `${daemon} reads unit ${reads.unit} (${reads.file}:${reads.line}), ${feeder.name}[${feeder.pid}] writes unit ${writes}: one of them names the wrong unit`,
    fix: `make them the same: run the feeder with --unit ${reads.unit}, or change ${reads.file}:${reads.line} to unit ${writes} and restart ${daemon}`,
  });
}

/**
 * Sorts the findings worst first and derives the verdict: the worst finding's message and
 * fix, or `healthy` with the summary `describe` gives when nothing worse than a warning.
 */
export function finish(findings: Finding[], describe: () => string): { verdict: Verdict; summary: string; fix?: string } {
  findings.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  const first = findings[0];
  const verdict: Verdict = first?.severity === 'problem' ? 'problem' : first?.severity === 'unchecked' ? 'unknown' : 'healthy';
  if (verdict === 'healthy' || first === undefined) return { verdict, summary: describe() };
  return { verdict, summary: first.message, ...(first.fix === undefined ? {} : { fix: first.fix }) };
}

export function diagnose(facts: UnitFacts): UnitDiagnosis {
  const { unit, segment } = facts;
  const key = keyText(unit);
  const findings: Finding[] = [];
  const feeders = facts.processes.filter((process) => process.role === 'feeder');
  const readers = facts.processes.filter((process) => process.role === 'reader');
  const configured = facts.configured;
  const files = facts.configFiles.length === 0 ? 'none found' : facts.configFiles.join(', ');
  let sample: SampleView | undefined;
  let fresh = false;

  for (const process of facts.stale) {
    findings.push(
      process.role === 'feeder'
        ? { severity: 'problem', code: 'writer-on-removed', message: `${process.name}[${process.pid}] writes a removed segment (shmid ${process.shmId}): no reader sees its samples`, fix: `restart it (kill ${process.pid}): it attaches the unit's current segment` }
        : { severity: 'problem', code: 'reader-on-removed', message: `${process.name}[${process.pid}] still reads a removed segment (shmid ${process.shmId}): it sees none of the samples written now`, fix: `restart ${process.name}: daemons attach their segments once, at start` },
    );
  }

  if (segment.state === 'absent') {
    if (configured.length > 0) {
      findings.push({
        severity: 'problem',
        code: 'absent',
        message: `unit ${unit} is configured in ${where(configured)} but no segment exists in this IPC namespace`,
        fix: `start the feeder on unit ${unit} (a feeder in a container needs the host's IPC namespace, --ipc=host); the daemon creates the segment when it starts, so a missing one also means it is not running`,
      });
    } else if (facts.stale.length === 0) {
      findings.push({ severity: 'problem', code: 'absent', message: `no segment exists for unit ${unit} (key ${key}) and no config file names it (searched: ${files})`, fix: `nothing uses unit ${unit}: check the unit number on both sides` });
    }
  } else if (segment.state === 'unreadable') {
    findings.push({ severity: 'unchecked', code: 'unreadable', message: `the segment cannot be read: ${segment.error}`, fix: 'run htntp doctor as root' });
  } else {
    const { stat } = segment;
    if (stat.size !== layout.size) {
      const why = stat.size === 80 ? 'a 32-bit program made it (80 bytes is the struct with a 32-bit time_t)' : "it is another program's segment, or another ABI's";
      findings.push({
        severity: 'problem',
        code: 'size',
        message: `the segment is ${stat.size} bytes, not ${layout.size} (sizeof(struct shmTime) here): ${why}`,
        fix: `stop its users, remove it (ipcrm -M ${key}), then start the daemon and the feeder again (both built for this platform)`,
      });
    }
    const concern = rootOnlyUnitConcern(unit, stat);
    if (concern !== undefined) findings.push({ severity: 'problem', code: 'not-root-only', message: concern.replace(/: remove it.*$/, ''), fix: `remove it (ipcrm -M ${key}) and let root recreate it 0600` });
    if (feeders.length > 1) {
      findings.push({ severity: 'problem', code: 'two-writers', message: `${feeders.length} feeders write unit ${unit}: ${who(feeders)}; readers get a mix of their samples`, fix: 'stop all but one; give each feeder its own unit' });
    }
    if (facts.procComplete && stat.nattch > facts.processes.length) {
      findings.push({
        severity: 'warning',
        code: 'hidden-attachments',
        message: `${stat.nattch} attachments but only ${facts.processes.length} visible processes: some attached processes live in another PID namespace (a container)`,
      });
    }
    if (segment.snapshot !== undefined && stat.size === layout.size) {
      sample = sampleView(segment.snapshot, facts.now);
      const age = sample.age ?? Infinity;
      fresh = sample.written && age <= facts.maxAge;
      if (!sample.written) {
        if (feeders.length === 0) {
          findings.push({ severity: 'problem', code: 'never-written', message: `nothing has ever written unit ${unit}${readers.length > 0 ? ` (read by ${who(readers)})` : ''}`, fix: `start the feeder with --unit ${unit}` });
        } else {
          findings.push({ severity: 'warning', code: 'no-sample-yet', message: `${who(feeders)} is attached but has not published a sample yet (waiting for a fix or a first measurement)` });
        }
      } else if (!fresh) {
        findings.push({
          severity: 'problem',
          code: 'stale',
          message: `the last sample is ${age.toFixed(0)} s old (daemons drop samples older than a few seconds)${feeders.length === 0 && facts.procComplete ? ' and no feeder is attached' : ''}`,
          fix: feeders.length === 0 ? `start the feeder on unit ${unit}` : `the feeder ${who(feeders)} publishes nothing: see its log`,
        });
      } else if (sample.leap === 3) {
        findings.push({ severity: 'warning', code: 'not-in-sync', message: 'the feeder says "not in sync" (leap 3): daemons ignore the source until it has a fix or an estimate' });
      }
      if (facts.procComplete && feeders.length === 0 && sample.written && fresh) {
        findings.push({ severity: 'warning', code: 'writer-unknown', message: 'fresh samples but no known feeder attached (a writer that attaches only to write, or in another PID namespace)' });
      }
    }
    if (unit >= 2 && (stat.perm & 0o022) === 0 && feeders.length === 0 && (sample === undefined || !fresh)) {
      findings.push({
        severity: 'warning',
        code: 'private',
        message: `the segment is ${`0${stat.perm.toString(8)}`} owned by uid ${stat.uid}: a feeder running as another user gets EACCES`,
        fix: `run the feeder as uid ${stat.uid}, or recreate the segment 0666 (chrony: refclock SHM ${unit}:perm=0666)`,
      });
    }
    if (facts.procComplete && configured.length > 0 && readers.length === 0) {
      findings.push({
        severity: 'problem',
        code: 'no-reader',
        message: `configured in ${where(configured)} but no daemon is attached to the segment`,
        fix: 'the daemon is not running, or started before the segment was recreated: (re)start it',
      });
    }
    if (configured.length === 0 && fresh && feeders.length > 0) {
      findings.push(
        readers.length === 0
          ? { severity: 'problem', code: 'not-configured', message: `fed by ${who(feeders)} but no daemon reads unit ${unit} and no config file names it (searched: ${files})`, fix: `add the lines of \`htntp config --daemon chrony|ntpsec|ntpd --unit ${unit} --source http|gps|fixed\` and restart the daemon` }
          : { severity: 'warning', code: 'config-not-found', message: `read by ${who(readers)} but none of the searched config files names unit ${unit} (searched: ${files})` },
      );
    }
  }

  if (facts.mismatch !== undefined) mismatchFinding(facts.mismatch, findings);
  const views = daemonFindings(facts, sample, fresh, findings);
  const { verdict, summary, fix } = finish(findings, () =>
    [
      feeders.length > 0 ? `fed by ${who(feeders)}` : undefined,
      readers.length > 0 ? `read by ${who(readers)}` : undefined,
      sample?.age !== null && sample?.age !== undefined ? `last sample ${sample.age.toFixed(1)} s ago` : undefined,
      views.chrony !== undefined ? `chronyd: ${views.chrony.name} reach ${views.chrony.reach.toString(8)} state ${views.chrony.state}` : undefined,
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
    ...(stat === undefined ? {} : { size: stat.size, perm: `0${stat.perm.toString(8)}`, uid: stat.uid, nattch: stat.nattch }),
    processes: facts.processes,
    stale: facts.stale,
    ...(sample === undefined ? {} : { sample }),
    configured,
    ...views,
  };
}
