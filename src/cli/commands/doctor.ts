// `htntp doctor`: one verdict per SHM unit (and chrony SOCK socket), with the fix in words. Read-only: attaches
// with SHM_RDONLY, never creates a segment, never clears valid. Exit 0 healthy, 1 a
// problem found, 2 something could not be checked.
import { existsSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { MAX_UNIT } from '../../shm.js';
import { DEFAULT_CONFIG_PATHS } from '../../doctor/daemon-config.js';
import {
  DEFAULT_MAX_AGE,
  runDoctor,
  type DoctorOptions,
  type DoctorReport,
  type SockDiagnosis,
  type UnitDiagnosis,
} from '../../doctor/index.js';
import { CHRONYC_ENV, NTPQ_ENV } from '../../doctor/daemon-query.js';
import { collect, integerOption, numberOption } from '../options.js';

/** A config path asked for by name must exist: a mistyped one would check nothing and say ok. */
function existingPath(value: string): string {
  if (!existsSync(value)) throw new InvalidArgumentError(`${value} does not exist`);
  return value;
}

export interface DoctorCliOptions {
  unit?: number[];
  sock?: string[];
  json?: boolean;
  chronyConf?: string[];
  ntpConf?: string[];
  ntpdRsConf?: string[];
  chronycSocket?: string;
  chronyc?: string;
  ntpq?: string;
  maxAge: number;
}

const VERDICT_TEXT = { healthy: 'ok', problem: 'PROBLEM', unknown: 'UNKNOWN (could not check)' } as const;

function formatUnit(unit: UnitDiagnosis): string {
  const lines = [`unit ${unit.unit} (key ${unit.key}): ${VERDICT_TEXT[unit.verdict]}: ${unit.summary}`];
  if (unit.fix !== undefined) lines.push(`  fix      ${unit.fix}`);
  if (unit.size !== undefined) {
    const processes = unit.processes.map((process) => `${process.name}[${process.pid}] (${process.role})`).join(', ');
    lines.push(
      `  segment  ${unit.size} bytes, perm ${unit.perm ?? '?'}, owner uid ${unit.uid ?? '?'}, ${unit.nattch ?? 0} ` +
        `attached${processes === '' ? '' : `: ${processes}`}`,
    );
  } else {
    lines.push(`  segment  ${unit.segment}`);
  }
  for (const process of unit.stale)
    lines.push(
      `  removed  ${process.name}[${process.pid}] (${process.role}) still maps removed shmid ${process.shmId}`,
    );
  if (unit.sample !== undefined) {
    const { sample } = unit;
    lines.push(
      sample.written && sample.offset !== null && sample.age !== null
        ? `  sample   offset ${sample.offset >= 0 ? '+' : ''}${sample.offset.toFixed(6)} s (clock - receive), ` +
            `age ${sample.age.toFixed(1)} s, valid ${sample.valid}, leap ${sample.leap}, precision ${sample.precision}`
        : '  sample   never written',
    );
  }
  for (const entry of unit.configured)
    lines.push(
      `  config   ${entry.file}:${entry.line} (${entry.daemon}` +
        `${entry.refid === undefined ? '' : ` refid ${entry.refid}`})`,
    );
  if (unit.chrony !== undefined) {
    const source = unit.chrony;
    lines.push(
      `  chronyd  ${source.name}: state ${source.state}, reach ${source.reach.toString(8)}, ` +
        `offset ${source.adjustedOffset >= 0 ? '+' : ''}${source.adjustedOffset.toFixed(6)} s (local - ` +
        `source, corrected)`,
    );
  }
  if (unit.ntpd !== undefined) {
    const peer = unit.ntpd;
    lines.push(
      `  ntpd     ${peer.remote} .${peer.refid}.: tally '${peer.tally}', reach ${peer.reach.toString(8)}, ` +
        `offset ${peer.offset >= 0 ? '+' : ''}${peer.offset.toFixed(6)} s`,
    );
  }
  for (const finding of unit.findings.slice(unit.verdict === 'healthy' ? 0 : 1)) {
    if (finding.severity === 'ok') continue;
    lines.push(
      `  ${finding.severity.padEnd(8)} ${finding.message}${finding.fix === undefined ? '' : ` (fix: ${finding.fix})`}`,
    );
  }
  return lines.join('\n');
}

function formatSock(sock: SockDiagnosis): string {
  const lines = [`sock ${sock.path}: ${VERDICT_TEXT[sock.verdict]}: ${sock.summary}`];
  if (sock.fix !== undefined) lines.push(`  fix      ${sock.fix}`);
  for (const feeder of sock.feeders)
    lines.push(`  feeder   ${feeder.name}[${feeder.pid}] uid ${feeder.uid} gid ${feeder.gid}`);
  const holders = sock.holders.map((holder) => `${holder.name}[${holder.pid}]`).join(', ');
  lines.push(
    sock.exists
      ? `  socket   mode ${sock.mode ?? '?'}, owner uid ${sock.uid ?? '?'} gid ${sock.gid ?? '?'}` +
          `${holders === '' ? '' : `, held by ${holders}`}`
      : '  socket   absent',
  );
  for (const entry of sock.configured)
    lines.push(
      `  config   ${entry.file}:${entry.line} (${entry.daemon}` +
        `${entry.refid === undefined ? '' : ` refid ${entry.refid}`})`,
    );
  if (sock.chrony !== undefined)
    lines.push(`  chronyd  ${sock.chrony.name}: state ${sock.chrony.state}, reach ${sock.chrony.reach.toString(8)}`);
  for (const finding of sock.findings.slice(sock.verdict === 'healthy' ? 0 : 1)) {
    lines.push(
      `  ${finding.severity.padEnd(8)} ${finding.message}${finding.fix === undefined ? '' : ` (fix: ${finding.fix})`}`,
    );
  }
  return lines.join('\n');
}

export function formatDoctor(report: DoctorReport): string {
  if (report.units.length === 0 && report.socks.length === 0) {
    return (
      `no SHM units: no segment exists and no config file names one ` +
      `(searched: ${report.configFiles.join(', ') || 'none found'})\n`
    );
  }
  return `${[...report.units.map(formatUnit), ...report.socks.map(formatSock)].join('\n\n')}\n`;
}

export function doctorOptions(options: DoctorCliOptions): DoctorOptions {
  return {
    units: options.unit,
    socks: options.sock,
    configPaths: {
      chrony: options.chronyConf ?? DEFAULT_CONFIG_PATHS.chrony,
      ntp: options.ntpConf ?? DEFAULT_CONFIG_PATHS.ntp,
      ntpdRs: options.ntpdRsConf ?? DEFAULT_CONFIG_PATHS.ntpdRs ?? [],
    },
    chronyc: options.chronyc,
    chronySocket: options.chronycSocket,
    ntpq: options.ntpq,
    maxAge: options.maxAge,
  };
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      "Diagnose SHM units: segment, attached processes, the daemons' config and view; one verdict and fix per unit " +
        '(exit 0 healthy, 1 problem, 2 could not check)',
    )
    .option(
      '-u, --unit <n>',
      'a unit to check (repeatable); default every unit that exists, is attached or is configured',
      collect(integerOption('unit', 0, MAX_UNIT)),
    )
    .option(
      '--sock <path>',
      "a SOCK refclock socket to check (repeatable); default those chrony's and ntpd-rs's configs name",
      collect(String),
    )
    .option('--json', 'print one plain object')
    .option(
      '--chrony-conf <path>',
      `chrony config file or directory (repeatable; default ${DEFAULT_CONFIG_PATHS.chrony.join(', ')})`,
      collect(existingPath),
    )
    .option(
      '--ntp-conf <path>',
      `ntpd/ntpsec config file (repeatable; default ${DEFAULT_CONFIG_PATHS.ntp.join(', ')})`,
      collect(existingPath),
    )
    .option(
      '--ntpd-rs-conf <path>',
      `ntpd-rs ntp.toml (repeatable; default ${(DEFAULT_CONFIG_PATHS.ntpdRs ?? []).join(', ')})`,
      collect(existingPath),
    )
    .option(
      '--chronyc-socket <path>',
      "chronyd's command socket (default: the config's bindcmdaddress, else chronyc's default)",
    )
    .option('--chronyc <path>', `chronyc to run (default: $${CHRONYC_ENV}, else chronyc on PATH)`)
    .option('--ntpq <path>', `ntpq to run, or a command that runs it (default: $${NTPQ_ENV}, else ntpq on PATH)`)
    .option(
      '--max-age <seconds>',
      'a sample older than this is stale',
      numberOption('max-age', 1, 86_400),
      DEFAULT_MAX_AGE,
    )
    .action(async (options: DoctorCliOptions) => {
      const report = await runDoctor(doctorOptions(options));
      process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatDoctor(report));
      process.exitCode = report.exitCode;
    });
}
