// What the running daemons say of their SHM sources: chronyd through `chronyc -c sources`
// (refclocks are listed by refid), ntpd/ntpsec through `ntpq -pn` (refclocks listed as
// SHM(N) with their refid). Each answer or the reason there is none.
import { execFile } from 'node:child_process';

export interface ChronySource {
  /** '#' refclock, '^' server, '=' peer */
  mode: string;
  /** '*' selected, '+' combined, '-' not combined, '?' unreachable, 'x' falseticker, '~' too variable */
  state: string;
  /** The refid of a refclock, the address of a server. */
  name: string;
  stratum: number;
  poll: number;
  /** The reach register (chronyc prints it in octal). */
  reach: number;
  /** Seconds since the last sample, undefined if none. */
  lastRx: number | undefined;
  /** Last sample's offset adjusted for later slews; positive = local clock ahead of the source. */
  adjustedOffset: number;
  measuredOffset: number;
  error: number;
}

export function parseChronySources(csv: string): ChronySource[] {
  return csv
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const f = line.trim().split(',');
      if (f.length < 10) throw new Error(`unexpected chronyc sources line: ${JSON.stringify(line)}`);
      return {
        mode: f[0] ?? '',
        state: f[1] ?? '',
        name: f[2] ?? '',
        stratum: Number(f[3]),
        poll: Number(f[4]),
        reach: Number.parseInt(f[5] ?? '0', 8),
        lastRx: f[6] === '-' || f[6] === undefined ? undefined : Number(f[6]),
        adjustedOffset: Number(f[7]),
        measuredOffset: Number(f[8]),
        error: Number(f[9]),
      };
    });
}

export interface NtpPeer {
  /** tally code: '*' system peer, '+' candidate, '-' outlier, 'x' falseticker, ' ' rejected ... */
  tally: string;
  /** `SHM(2)` or an address */
  remote: string;
  unit: number | undefined;
  /** Without the dots: HTTP for `.HTTP.` */
  refid: string;
  reach: number;
  /** Seconds, reference - local (ntpq prints ms). */
  offset: number;
}

/** `ntpq -pn` output: the header, a rule, then one line per association. */
export function parseNtpqPeers(text: string): NtpPeer[] {
  const peers: NtpPeer[] = [];
  for (const line of text.split('\n')) {
    const match = /^([ *+#ox.\-=~^]?)(\S+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+([0-7]+)\s+(\S+)\s+(-?[\d.]+)/.exec(line);
    if (match === null || match[2] === 'remote') continue;
    const remote = match[2] ?? '';
    const unit = /^SHM\((\d+)\)$/.exec(remote)?.[1];
    peers.push({
      tally: match[1] || ' ',
      remote,
      unit: unit === undefined ? undefined : Number(unit),
      refid: (match[3] ?? '').replace(/^\.|\.$/g, ''),
      reach: Number.parseInt(match[8] ?? '0', 8),
      offset: Number(match[10]) / 1000,
    });
  }
  return peers;
}

export type Answer<T> = { ok: true; value: T } | { ok: false; reason: string };

function run(command: string, args: readonly string[], timeoutMs: number): Promise<Answer<string>> {
  return new Promise((resolve) => {
    execFile(command, [...args], { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) return resolve({ ok: true, value: stdout });
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return resolve({ ok: false, reason: `${command} is not installed` });
      const detail = `${stderr}${stdout}`.trim().split('\n').pop() ?? '';
      resolve({ ok: false, reason: `${command} ${args.join(' ')} failed: ${detail || error.message}` });
    });
  });
}

export interface ChronyView {
  sources: ChronySource[];
  /**
   * The correction chronyd still means to apply to the system clock, seconds (`chronyc -c
   * tracking`, its "System time" with the sign of a correction: negative when the clock is
   * fast). Its measured offsets are taken against the corrected clock, so a published
   * offset o shows as -o + correction.
   */
  correction: number;
}

/** chronyd's sources and pending correction, through its command socket (`socket`) or chronyc's default. */
export async function queryChrony(socket: string | undefined, timeoutMs = 3_000): Promise<Answer<ChronyView>> {
  const base = ['-n', '-c', ...(socket === undefined ? [] : ['-h', socket])];
  const [sources, tracking] = await Promise.all([run('chronyc', [...base, 'sources'], timeoutMs), run('chronyc', [...base, 'tracking'], timeoutMs)]);
  if (!sources.ok) return sources;
  if (!tracking.ok) return tracking;
  try {
    const correction = Number(tracking.value.trim().split(',')[4]);
    if (!Number.isFinite(correction)) throw new Error(`unexpected chronyc tracking line: ${JSON.stringify(tracking.value)}`);
    return { ok: true, value: { sources: parseChronySources(sources.value), correction } };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

/** ntpd/ntpsec's associations (`ntpq -pn`; `command` replaces `ntpq` when ntpq needs a wrapper). */
export async function queryNtpd(command: readonly string[] = ['ntpq'], timeoutMs = 5_000): Promise<Answer<NtpPeer[]>> {
  const [program = 'ntpq', ...prefix] = command;
  const answer = await run(program, [...prefix, '-pn'], timeoutMs);
  if (!answer.ok) return answer;
  return { ok: true, value: parseNtpqPeers(answer.value) };
}
