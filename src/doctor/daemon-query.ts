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
    const match =
      /^([ *+#ox.\-=~^]?)(\S+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+([0-7]+)\s+(\S+)\s+(-?[\d.]+)/.exec(line);
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

/** A query tool: the command words (a path, or a wrapper such as nsenter ... ntpq) and how to name it in a fix. */
export interface Tool {
  command: readonly string[];
  /** The option and environment variable that choose it, for the "not found" message. */
  option: string;
  env: string;
}

export const CHRONYC_ENV = 'HTNTP_CHRONYC';
export const NTPQ_ENV = 'HTNTP_NTPQ';
export const NTPCTL_ENV = 'HTNTP_NTP_CTL';

/** The tool as chosen: the option, else its environment variable, else `name` on PATH. */
export function chooseTool(
  name: string,
  option: string,
  env: string,
  given: string | readonly string[] | undefined,
  environment: NodeJS.ProcessEnv = process.env,
): Tool {
  const words = (value: string): string[] => value.split(/\s+/).filter(Boolean);
  const chosen = given ?? environment[env];
  const command = chosen === undefined ? [name] : typeof chosen === 'string' ? words(chosen) : [...chosen];
  return { command: command.length === 0 ? [name] : command, option, env };
}

/** The last non-empty line a tool printed, in its own words. */
function lastWords(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .pop()
      ?.trim() ?? ''
  );
}

function run(
  tool: Tool,
  args: readonly string[],
  timeoutMs: number,
): Promise<Answer<{ stdout: string; stderr: string }>> {
  const [program = '', ...prefix] = tool.command;
  const shown = [...tool.command, ...args].join(' ');
  return new Promise((resolve) => {
    execFile(
      program,
      [...prefix, ...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ ok: true, value: { stdout, stderr } });
        const { code } = error;
        if (code === 'ENOENT' || code === 'EACCES') {
          return resolve({
            ok: false,
            reason: `${program} could not be run (${code}): give its path with ${tool.option} PATH or ${tool.env}=PATH`,
          });
        }
        if (error.killed)
          return resolve({ ok: false, reason: `\`${shown}\` did not answer within ${timeoutMs / 1000} s` });
        const words = lastWords(`${stderr}\n${stdout}`);
        const status = typeof code === 'number' ? `exited ${code}` : `failed (${error.signal ?? 'no status'})`;
        resolve({ ok: false, reason: `\`${shown}\` ${status}${words === '' ? '' : `: ${words}`}` });
      },
    );
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
export async function queryChrony(
  socket: string | undefined,
  tool: Tool = chooseTool('chronyc', '--chronyc', CHRONYC_ENV, undefined),
  timeoutMs = 3_000,
): Promise<Answer<ChronyView>> {
  const base = ['-n', '-c', ...(socket === undefined ? [] : ['-h', socket])];
  const [sources, tracking] = await Promise.all([
    run(tool, [...base, 'sources'], timeoutMs),
    run(tool, [...base, 'tracking'], timeoutMs),
  ]);
  if (!sources.ok) return sources;
  if (!tracking.ok) return tracking;
  // chronyc prints "506 Cannot talk to daemon" and the like on stderr, at times with status 0.
  const complaint = lastWords(sources.value.stderr) || lastWords(tracking.value.stderr);
  if (sources.value.stdout.trim() === '' && complaint !== '')
    return { ok: false, reason: `${tool.command.join(' ')}: ${complaint}` };
  try {
    const correction = Number(tracking.value.stdout.trim().split(',')[4]);
    if (!Number.isFinite(correction))
      throw new Error(`unexpected chronyc tracking line: ${JSON.stringify(tracking.value.stdout.trim() || complaint)}`);
    return { ok: true, value: { sources: parseChronySources(sources.value.stdout), correction } };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

/**
 * ntpd/ntpsec's associations (`ntpq -pn`). ntpsec's ntpq reports a daemon it cannot reach
 * on its output and exits 0 (`***Socket error; probably ntpd is not running`,
 * `***Request timed out`): a `***` line, or no peer table at all, is no answer.
 */
export async function queryNtpd(
  tool: Tool = chooseTool('ntpq', '--ntpq', NTPQ_ENV, undefined),
  timeoutMs = 5_000,
): Promise<Answer<NtpPeer[]>> {
  const answer = await run(tool, ['-pn'], timeoutMs);
  if (!answer.ok) return answer;
  const { stdout, stderr } = answer.value;
  const complaint = `${stdout}\n${stderr}`.split('\n').find((line) => line.trim().startsWith('***'));
  if (complaint !== undefined) return { ok: false, reason: `${tool.command.join(' ')} -pn: ${complaint.trim()}` };
  if (!/^\s*remote\s+refid/m.test(stdout)) {
    const words = lastWords(`${stderr}\n${stdout}`);
    return {
      ok: false,
      reason: `${tool.command.join(' ')} -pn printed no peer table${words === '' ? '' : `: ${words}`}`,
    };
  }
  return { ok: true, value: parseNtpqPeers(stdout) };
}
