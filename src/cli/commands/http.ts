// `htntp http` (the default command): time from the Date headers of several web servers
// into the SHM segment, or with --once --dry-run one measurement printed.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { redactCredentials, type Logger } from '../../log.js';
import { diffSeconds } from '../../time.js';
import { codedError, invalidArgValue } from '../../errors.js';
import {
  DEFAULT_PROBES,
  MAX_PROBES,
  measureOffset,
  type MeasureOptions,
  type MeasurementResult,
} from '../../sources/http/measure.js';
import { checkProxy } from '../../sources/http/probe.js';
import { HttpSource } from '../../sources/http/source.js';
import { DEFAULT_SERVERS, serverUrl } from '../../sources/http/servers.js';
import { integerOption, numberOption } from '../options.js';
import { addServiceOptions, runService, serviceLogger, type ServiceOptions } from '../service.js';
import { shutdownSignal } from '../signals.js';

export interface HttpOptions extends ServiceOptions {
  interval: number;
  probes: number;
  timeout?: number;
  once?: boolean;
  dryRun?: boolean;
  json?: boolean;
  proxy?: string;
  /** A file holding the proxy (`http://user:pass@host:port`): credentials kept out of argv and `ps`. */
  proxyFile?: string;
  /** PEM file of extra trusted CA certificates. */
  ca?: string;
}

export interface HttpRun {
  exitCode: number;
  /** The measurement of --once --dry-run. */
  result?: MeasurementResult;
  published?: number;
}

/** The --ca file's certificates; a file that cannot be read or holds none fails before anything starts. */
export function readCa(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    const failure = error as NodeJS.ErrnoException;
    throw codedError(
      `--ca ${path}: ${failure.message}`,
      failure.code ?? 'ERR_CA_UNREADABLE',
      { errno: failure.errno, syscall: failure.syscall, path },
      error,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw invalidArgValue(`--ca ${path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file`);
  return pem;
}

function measureOptions(options: HttpOptions): Omit<MeasureOptions, 'logger' | 'signal'> {
  return {
    probes: options.probes,
    timeout: options.timeout,
    proxy: options.proxy,
    ...(options.ca === undefined ? {} : { ca: readCa(options.ca) }),
  };
}

/** `user[:pass]@` in a proxy given as `[scheme://]user:pass@host:port`. */
export function hasProxyCredentials(proxy: string): boolean {
  return /^(?:[a-z][a-z0-9+.-]*:\/\/)?[^/?#]*@/i.test(proxy);
}

/** The proxy of a --proxy-file: its first line that is neither blank nor a # comment. */
export function readProxyFile(path: string): string {
  const line = readFileSync(path, 'utf8')
    .split('\n')
    .map((text) => text.trim())
    .find((text) => text !== '' && !text.startsWith('#'));
  if (line === undefined)
    throw codedError(
      `${path}: no proxy in the file (one line such as http://user:pass@proxy:3128)`,
      'ERR_INVALID_ARG_VALUE',
    );
  return line;
}

/**
 * The proxy the run uses, read and checked before anything starts. Credentials in argv
 * are visible to every local user (`ps`, /proc/PID/cmdline): warn, and overwrite the
 * process title so they vanish from it for the rest of the run.
 */
export function resolveProxy(
  options: Pick<HttpOptions, 'proxy' | 'proxyFile'>,
  servers: readonly URL[],
  logger: Logger,
): string | undefined {
  if (options.proxy !== undefined && options.proxyFile !== undefined) {
    throw invalidArgValue('--proxy and --proxy-file exclude each other');
  }
  if (options.proxyFile !== undefined) {
    const fromFile = readProxyFile(options.proxyFile);
    checkProxy(servers, fromFile);
    return fromFile;
  }
  checkProxy(servers, options.proxy);
  if (options.proxy !== undefined && hasProxyCredentials(options.proxy)) {
    process.title = process.argv
      .map((arg, index) => (index === 0 ? 'htntp' : redactCredentials(arg)))
      .filter((_arg, index) => index !== 1)
      .join(' ');
    logger.warn('proxy credentials on the command line', {
      hint:
        'every local user could read them (ps, /proc); put the proxy in HTTPS_PROXY or a file given ' +
        'with --proxy-file',
    });
  }
  return options.proxy;
}

/** People-readable form of a measurement (stdout of --once --dry-run without --json). */
export function formatMeasurement(result: MeasurementResult): string {
  const ms = (seconds: number | null): string => (seconds === null ? '-' : `${(seconds * 1000).toFixed(3)} ms`);
  const lines = result.servers.map(
    (server) =>
      `${server.status.padEnd(11)} ${server.url}  offset ${ms(server.offset)} ± ${ms(server.error)}  ` +
      `rtt ${ms(server.rtt)}  probes ${server.probes}${server.tls === 'time-unverified' ? '  time-unverified' : ''}` +
      `${server.reason ? `  (${server.reason})` : ''}`,
  );
  lines.push(
    result.offset === null
      ? `no estimate: ${result.reason ?? ''}`
      : `offset ${ms(result.offset)} ± ${ms(result.error)} (server - local; ${result.survivors} ` +
          `of ${result.servers.length} servers ` +
          `agree${result.timeUnverified ? "; certificates checked against the servers' time" : ''})`,
  );
  if (result.caveat) lines.push(`bound widened: ${result.caveat}`);
  return `${lines.join('\n')}\n`;
}

/** The command's logic, outside the commander wiring; it prints nothing (--once --dry-run returns its measurement). */
export async function runHttp(
  serverArgs: readonly string[],
  givenOptions: HttpOptions,
  signal?: AbortSignal,
): Promise<HttpRun> {
  const servers = serverArgs.length > 0 ? serverArgs : DEFAULT_SERVERS;
  servers.forEach(serverUrl); // bad arguments fail before anything starts
  if (givenOptions.ca !== undefined) readCa(givenOptions.ca);
  // --json logs as JSON too (a copy: the caller's object is left as given).
  const given: HttpOptions = givenOptions.json ? { ...givenOptions, logFormat: 'json' } : givenOptions;
  const { proxyFile: _proxyFile, proxy: _proxy, ...rest } = given;
  const proxy = resolveProxy(given, servers.map(serverUrl), serviceLogger(given));
  const options: HttpOptions = { ...rest, proxy };
  if (options.once && options.dryRun) {
    const logger = serviceLogger(options);
    const result = await measureOffset(servers, {
      ...measureOptions(options),
      logger,
      signal,
    });
    return { exitCode: result.offset === null ? 1 : 0, result };
  }
  let estimated = false;
  const sourceOptions = (logger: Logger) => ({
    ...measureOptions(options),
    servers,
    interval: options.interval,
    once: options.once ?? false,
    logger,
  });
  if (options.dryRun) {
    // Samples as they would be published, logged instead of written.
    const logger = serviceLogger(options);
    const stop = signal ?? shutdownSignal();
    const source = new HttpSource({
      ...sourceOptions(logger),
      onMeasurement: (result) => (estimated ||= result.offset !== null),
    });
    for await (const sample of source.samples(stop)) {
      logger.info('sample (dry run)', {
        offset: diffSeconds(sample.clockTime, sample.receiveTime),
        precision: sample.precision,
      });
    }
    return { exitCode: estimated ? 0 : 1 };
  }
  const { published } = await runService(
    options,
    ({ logger, metrics }) =>
      new HttpSource({
        ...sourceOptions(logger),
        onMeasurement: (result) => {
          estimated ||= result.offset !== null;
          for (const server of result.servers) {
            metrics?.server(server.url, {
              status: server.status,
              ...(server.rtt === null ? {} : { rtt: server.rtt }),
              ...(server.offset === null ? {} : { offset: server.offset }),
            });
          }
        },
      }),
    signal,
  );
  return { exitCode: options.once && !estimated ? 1 : 0, published };
}

export function registerHttp(program: Command): void {
  const command = program
    .command('http', { isDefault: true })
    .description(
      'Publish time from the Date headers of several web servers (HEAD probes, Marzullo selection) to the SHM segment',
    )
    .argument(
      '[servers...]',
      'host[:port] (https) or http(s):// URLs; default: a built-in list of well-run HTTPS sites',
    )
    .option('--interval <seconds>', 'seconds between measurements', numberOption('interval', 1, 86_400), 300)
    .option(
      '-p, --probes <n>',
      'probes per server per measurement',
      integerOption('probes', 1, MAX_PROBES),
      DEFAULT_PROBES,
    )
    .option(
      '--timeout <seconds>',
      'deadline of one measurement (default probes + 5)',
      numberOption('timeout', 0.1, 3600),
    )
    .option(
      '--proxy <host:port>',
      'HTTP proxy (CONNECT for https, absolute-form requests for http); default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY. ' +
        'Credentials here are visible in ps: use --proxy-file or the environment',
    )
    .option('--proxy-file <path>', 'file holding the proxy, e.g. http://user:pass@proxy:3128 (keep it 0600)')
    .option('--ca <file>', 'PEM file of extra CA certificates to trust')
    .option('--once', 'one measurement: publish its samples until it expires (2 x interval), then exit')
    .option('-n, --dry-run', 'never touch the segment (with --once: print the measurement)')
    .option(
      '--json',
      'machine-readable output: with --once --dry-run one JSON object (a failure too: {reason, code, ' +
        'exitCode}); logs as JSON',
    );
  addServiceOptions(command, { unit: 2 }).action(async (servers: string[], options: HttpOptions) => {
    const run = await runHttp(servers, options);
    if (run.result !== undefined)
      process.stdout.write(options.json ? `${JSON.stringify(run.result)}\n` : formatMeasurement(run.result));
    else if (!options.dryRun && options.json)
      process.stdout.write(`${JSON.stringify({ published: run.published ?? 0, exitCode: run.exitCode })}\n`);
    process.exitCode = run.exitCode;
  });
}
