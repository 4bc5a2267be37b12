// Debian's real web servers, load balancer and proxies for end-to-end tests: each runs in
// the foreground from a config generated in a private temp dir, listens on a 127.0.0.1
// port, and (web servers) reads a clock shifted by libfaketime. start*() returns once the
// port accepts (or throws with the program's output and why); stop() kills it and removes
// its dir.
//
// Clocks: libfaketime (LD_PRELOAD) adds a constant offset to every clock call of the
// server and its children. It shifts CLOCK_MONOTONIC too unless told not to; a Date cache
// that is refreshed on the monotonic clock (lighttpd) then ticks with the shifted realtime,
// so `realMonotonic` keeps the monotonic clock real and the cache lags as on a real host.
// A steppable clock reads its offset from a file on every call, so step() takes effect at
// once.
import { createServer, connect, type AddressInfo } from 'node:net';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { realtime } from '../../src/clock.js';
import type { Timespec } from '../../src/time.js';
import { makeTempDir, startProcess, type RunningProcess, type TempDir } from './process.js';
import { findTool, type ToolName } from './tools.js';
import { waitFor } from './wait.js';

export type WebServerKind = 'nginx' | 'apache2' | 'lighttpd';
export type ProxyKind = 'squid' | 'tinyproxy';

export interface ClockOptions {
  /** Server clock - true clock, seconds (fractional allowed). */
  offset?: number;
  /** Leave CLOCK_MONOTONIC unshifted (a Date cache refreshed on it then lags realtime). */
  realMonotonic?: boolean;
  /** Allow step() while running (the offset is re-read on every clock call). */
  steppable?: boolean;
}

export interface WebServerOptions extends ClockOptions {
  /** Sent as `X-Clock` on every answer (which server answered, through a balancer). */
  label?: string;
  /** nginx only: every answer has this status (a 3xx goes to /elsewhere). */
  status?: number;
  /** nginx only: HEAD is answered with this status, GET as usual. */
  refuseHead?: 405 | 501;
}

export interface RealProcess {
  /** What runs, e.g. `nginx` or `haproxy`. */
  readonly kind: string;
  readonly port: number;
  readonly dir: string;
  readonly process: RunningProcess;
  /** Kills the process (SIGTERM, then SIGKILL) and removes its dir. Idempotent. */
  stop(): Promise<void>;
}

export interface RealWebServer extends RealProcess {
  readonly kind: WebServerKind;
  /** `http://127.0.0.1:PORT/` */
  readonly url: string;
  readonly label: string;
  /** The clock's current offset, seconds. */
  readonly offset: number;
  /** Moves the clock to `offset` at once (steppable servers only). */
  step(offset: number): Promise<void>;
  /** nginx: `METHOD STATUS` of every request so far. */
  requests(): Promise<string[]>;
}

export interface RealBalancer extends RealProcess {
  readonly kind: 'haproxy';
  readonly url: string;
  readonly backends: readonly RealWebServer[];
}

export interface RealProxy extends RealProcess {
  readonly kind: ProxyKind;
  /** `127.0.0.1:PORT`, as `--proxy` takes it. */
  readonly uri: string;
}

function tool(name: ToolName): string {
  const path = findTool(name);
  if (path === undefined) throw new Error(`${name} not found: check with describeE2e()/e2eTool() before starting it`);
  return path;
}

/** A port that was free a moment ago (the start is retried if someone takes it meanwhile). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** libfaketime's spec for a constant offset: `+0.432100s`. */
export function fakeTimeSpec(offset: number): string {
  if (!Number.isFinite(offset)) throw new RangeError(`clock offset must be finite, got ${offset}`);
  return `${offset < 0 ? '-' : '+'}${Math.abs(offset).toFixed(6)}s`;
}

/** The environment that shifts a process's clocks; with `file`, the offset is read from it on every call. */
function clockEnv(offset: number, options: ClockOptions, file: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { LD_PRELOAD: tool('libfaketime') };
  if (file !== undefined) {
    env.FAKETIME_TIMESTAMP_FILE = file;
    env.FAKETIME_NO_CACHE = '1';
  } else {
    env.FAKETIME = fakeTimeSpec(offset);
  }
  if (options.realMonotonic) env.DONT_FAKE_MONOTONIC = '1';
  return env;
}

/** Writes `content` so that a reader never sees a partial file. */
async function writeAtomically(path: string, content: string): Promise<void> {
  await writeFile(`${path}.new`, content);
  await rename(`${path}.new`, path);
}

interface Launch {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** A log the program writes instead of stderr, shown when it fails. */
  logFile?: string;
}

async function outputOf(child: RunningProcess, logFile: string | undefined): Promise<string> {
  const log = logFile === undefined ? '' : await readFile(logFile, 'utf8').catch(() => '');
  return log === '' ? child.output() : `${child.output()}\n${logFile}:\n${log}`;
}

const START_ATTEMPTS = 3;

/**
 * Runs `prepare(port)` and the program it returns until its port accepts. A program that
 * exits first is retried on a new port only when its output says the port was taken.
 */
async function launch(
  kind: string,
  dir: TempDir,
  prepare: (port: number) => Promise<Launch>,
  timeoutMs = 15_000,
): Promise<{ port: number; process: RunningProcess }> {
  let lastOutput = '';
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt += 1) {
    const port = await freePort();
    const { command, args, env, logFile } = await prepare(port);
    const child = startProcess(command, args, { cwd: dir.path, env: { ...process.env, ...env } });
    try {
      const outcome = await waitFor(
        async () => (child.exit() ? 'exited' : (await accepts(port)) ? 'ready' : undefined),
        {
          what: `${kind} to accept on 127.0.0.1:${port}`,
          timeoutMs,
          intervalMs: 50,
        },
      );
      if (outcome === 'ready') return { port, process: child };
    } catch (error) {
      await child.stop('SIGKILL', 2_000);
      throw new Error(`${kind} did not start: ${(error as Error).message}\n${await outputOf(child, logFile)}`, {
        cause: error,
      });
    }
    lastOutput = await outputOf(child, logFile);
    if (!/address already in use|cannot bind|could not bind|EADDRINUSE/i.test(lastOutput)) break;
  }
  throw new Error(`${kind} exited before accepting connections:\n${lastOutput}`);
}

async function privateDir(kind: string): Promise<TempDir> {
  const dir = await makeTempDir(kind);
  // Workers run as an unprivileged user (apache2, squid, tinyproxy drop root): they must reach the files.
  await chmod(dir.path, 0o755);
  await mkdir(join(dir.path, 'www'), { mode: 0o755 });
  await writeFile(join(dir.path, 'www', 'index.html'), 'htntp\n', { mode: 0o644 });
  return dir;
}

function stopper(child: RunningProcess, dir: TempDir): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await child.stop('SIGTERM', 5_000);
      await dir.remove();
    })();
    return stopping;
  };
}

function nginxLocation(options: WebServerOptions): string {
  const lines: string[] = [];
  if (options.refuseHead !== undefined) lines.push(`if ($request_method = HEAD) { return ${options.refuseHead}; }`);
  if (options.status !== undefined) {
    if (!Number.isInteger(options.status) || options.status < 200 || options.status > 599)
      throw new RangeError(`status must be 200..599, got ${options.status}`);
    lines.push(
      options.status >= 300 && options.status < 400
        ? `return ${options.status} /elsewhere;`
        : `return ${options.status};`,
    );
  }
  return lines.length === 0 ? '' : `location / { ${lines.join(' ')} }`;
}

function nginxConfig(dir: string, port: number, label: string, location = ''): string {
  return `daemon off;
master_process on;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log stderr warn;
# Workers keep only the environment named here: without these lines their clock is not shifted.
env FAKETIME; env LD_PRELOAD; env DONT_FAKE_MONOTONIC; env FAKETIME_TIMESTAMP_FILE; env FAKETIME_NO_CACHE;
events { worker_connections 256; }
http {
  log_format requests '$request_method $status';
  access_log ${dir}/access.log requests;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  keepalive_timeout 60s;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;
    add_header X-Clock ${label} always;
    ${location}
  }
}
`;
}

function apacheConfig(dir: string, port: number, label: string): string {
  const modules = '/usr/lib/apache2/modules';
  return `ServerRoot ${dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
LoadModule mpm_event_module ${modules}/mod_mpm_event.so
LoadModule authz_core_module ${modules}/mod_authz_core.so
LoadModule dir_module ${modules}/mod_dir.so
LoadModule headers_module ${modules}/mod_headers.so
User www-data
Group www-data
PidFile ${dir}/apache2.pid
DefaultRuntimeDir ${dir}
Mutex file:${dir} default
ErrorLog ${dir}/error.log
LogLevel warn
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
DocumentRoot ${dir}/www
DirectoryIndex index.html
Header always set X-Clock ${label}
<Directory ${dir}/www>
  Require all granted
</Directory>
`;
}

function lighttpdConfig(dir: string, port: number, label: string): string {
  return `server.document-root = "${dir}/www"
server.bind = "127.0.0.1"
server.port = ${port}
server.username = "www-data"
server.groupname = "www-data"
server.modules = ( "mod_setenv" )
server.max-keep-alive-requests = 100000
server.max-keep-alive-idle = 60
index-file.names = ( "index.html" )
setenv.add-response-header = ( "X-Clock" => "${label}" )
`;
}

/**
 * lighttpd answers with the Date cached at start-up until its first refresh, up to a
 * second or more later: ready once its Date has changed.
 */
async function awaitDateRefresh(port: number, child: RunningProcess, dir: TempDir): Promise<void> {
  const connection = await openHeadConnection(port);
  try {
    const first = (await connection.head()).headers.date;
    await waitFor(async () => ((await connection.head()).headers.date !== first ? true : undefined), {
      what: 'lighttpd to refresh its cached Date',
      timeoutMs: 5_000,
      intervalMs: 20,
    });
  } catch (error) {
    await child.stop('SIGKILL', 2_000);
    await dir.remove();
    throw new Error(`lighttpd did not refresh its Date: ${(error as Error).message}\n${child.output()}`, {
      cause: error,
    });
  } finally {
    connection.close();
  }
}

let labels = 0;

/** A real web server on 127.0.0.1 whose clock is `offset` seconds off. */
export async function startWebServer(kind: WebServerKind, options: WebServerOptions = {}): Promise<RealWebServer> {
  const { offset: initial = 0, steppable = false } = options;
  if (kind !== 'nginx' && (options.status !== undefined || options.refuseHead !== undefined))
    throw new TypeError('status and refuseHead are for nginx only');
  labels += 1;
  const label = options.label ?? `${kind}-${labels}`;
  const dir = await privateDir(kind);
  const clockFile = steppable ? join(dir.path, 'faketime') : undefined;
  if (clockFile !== undefined) await writeFile(clockFile, `${fakeTimeSpec(initial)}\n`, { mode: 0o644 });
  const env = clockEnv(initial, options, clockFile);
  const conf = join(dir.path, `${kind}.conf`);
  const { port, process: child } = await launch(kind, dir, async (port) => {
    switch (kind) {
      case 'nginx':
        await mkdir(join(dir.path, 'tmp'), { recursive: true });
        await writeFile(conf, nginxConfig(dir.path, port, label, nginxLocation(options)));
        return { command: tool('nginx'), args: ['-p', dir.path, '-c', conf, '-e', 'stderr'], env };
      case 'apache2':
        await writeFile(conf, apacheConfig(dir.path, port, label));
        return {
          command: tool('apache2'),
          args: ['-f', conf, '-D', 'FOREGROUND'],
          env,
          logFile: join(dir.path, 'error.log'),
        };
      case 'lighttpd':
        await writeFile(conf, lighttpdConfig(dir.path, port, label));
        return { command: tool('lighttpd'), args: ['-D', '-f', conf], env };
    }
  });
  if (kind === 'lighttpd') await awaitDateRefresh(port, child, dir);
  let offset = initial;
  return {
    kind,
    port,
    dir: dir.path,
    process: child,
    url: `http://127.0.0.1:${port}/`,
    label,
    get offset() {
      return offset;
    },
    async step(next: number) {
      if (clockFile === undefined) throw new Error(`${label} was not started steppable`);
      await writeAtomically(clockFile, `${fakeTimeSpec(next)}\n`);
      offset = next;
    },
    async requests() {
      if (kind !== 'nginx') throw new Error('requests() is for nginx only');
      const log = await readFile(join(dir.path, 'access.log'), 'utf8').catch(() => '');
      return log.split('\n').filter(Boolean);
    },
    stop: stopper(child, dir),
  };
}

/** Starts several web servers at once; on any failure stops the others and rethrows. */
export async function startWebServers(
  specs: readonly (WebServerOptions & { kind: WebServerKind })[],
): Promise<RealWebServer[]> {
  const started = await Promise.allSettled(specs.map(({ kind, ...options }) => startWebServer(kind, options)));
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await stopAll(servers);
    throw failed.reason;
  }
  return servers;
}

/**
 * haproxy in round-robin over `backends`, a new backend for every request even on one
 * client keep-alive connection (`http-reuse never` + `option http-server-close`: each
 * request is balanced on its own). haproxy's own clock is not shifted; it adds no Date.
 */
export async function startBalancer(backends: readonly RealWebServer[]): Promise<RealBalancer> {
  if (backends.length === 0) throw new RangeError('a balancer needs at least one backend');
  const dir = await privateDir('haproxy');
  const conf = join(dir.path, 'haproxy.cfg');
  const { port, process: child } = await launch('haproxy', dir, async (port) => {
    await writeFile(
      conf,
      `global
  maxconn 512
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-server-close
frontend web
  bind 127.0.0.1:${port}
  default_backend clocks
backend clocks
  balance roundrobin
  http-reuse never
${backends.map((backend, index) => `  server b${index} 127.0.0.1:${backend.port}`).join('\n')}
`,
    );
    return { command: tool('haproxy'), args: ['-db', '-f', conf] };
  });
  return {
    kind: 'haproxy',
    port,
    dir: dir.path,
    process: child,
    url: `http://127.0.0.1:${port}/`,
    backends,
    stop: stopper(child, dir),
  };
}

export interface ProxyOptions {
  /** Ports CONNECT may reach: Debian's default is 443 only ('ssl'); 'any' for tests that tunnel to a test port. */
  connect?: 'ssl' | 'any';
}

function squidConfig(dir: string, port: number, connect: 'ssl' | 'any'): string {
  return `http_port 127.0.0.1:${port}
pid_filename ${dir}/squid.pid
cache_log stdio:/dev/stderr
access_log none
cache_store_log none
coredump_dir ${dir}
cache deny all
shutdown_lifetime 0 seconds
dns_nameservers 127.0.0.1
acl SSL_ports port 443
acl CONNECT method CONNECT
${connect === 'ssl' ? 'http_access deny CONNECT !SSL_ports' : ''}
http_access allow localhost
http_access deny all
`;
}

function tinyproxyConfig(port: number, connect: 'ssl' | 'any'): string {
  // No ConnectPort line at all lets CONNECT reach any port; Debian's file allows 443 and 563.
  return `Port ${port}
Listen 127.0.0.1
Timeout 60
MaxClients 100
Allow 127.0.0.1
LogLevel Info
${connect === 'ssl' ? 'ConnectPort 443\nConnectPort 563' : ''}
`;
}

/** A real forward proxy on 127.0.0.1 (squid or tinyproxy), unshifted clock. */
export async function startProxy(kind: ProxyKind, options: ProxyOptions = {}): Promise<RealProxy> {
  const { connect: connectPorts = 'ssl' } = options;
  const dir = await privateDir(kind);
  const conf = join(dir.path, `${kind}.conf`);
  const { port, process: child } = await launch(
    kind,
    dir,
    async (port) => {
      if (kind === 'squid') {
        await writeFile(conf, squidConfig(dir.path, port, connectPorts));
        return { command: tool('squid'), args: ['-N', '-f', conf] };
      }
      await writeFile(conf, tinyproxyConfig(port, connectPorts));
      return { command: tool('tinyproxy'), args: ['-d', '-c', conf] };
    },
    30_000,
  );
  return { kind, port, dir: dir.path, process: child, uri: `127.0.0.1:${port}`, stop: stopper(child, dir) };
}

export async function stopAll(processes: readonly (RealProcess | undefined)[]): Promise<void> {
  await Promise.all(processes.flatMap((entry) => (entry === undefined ? [] : [entry.stop()])));
}

export interface HeadAnswer {
  /** Local CLOCK_REALTIME just before the request was written. */
  sendTime: Timespec;
  /** Local CLOCK_REALTIME when the answer's first bytes arrived. */
  receiveTime: Timespec;
  status: number;
  /** Header names in lower case; a repeated header's values joined by ', '. */
  headers: Record<string, string>;
}

export interface HeadConnection {
  /** One `HEAD target` on this connection (origin form `/` or, to a proxy, absolute form). */
  head(target?: string): Promise<HeadAnswer>;
  /** Any bodiless request head, e.g. `CONNECT host:port`. */
  request(method: string, target: string): Promise<HeadAnswer>;
  close(): void;
}

/**
 * One raw keep-alive TCP connection sending HEAD requests one at a time: what a balancer
 * or server does with requests on ONE connection, with no client library in between.
 */
export async function openHeadConnection(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 10_000,
): Promise<HeadConnection> {
  const socket = connect(port, host);
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffer = '';
  let waiting: { resolve: (head: string, at: Timespec) => void; reject: (error: Error) => void } | undefined;
  let firstByteTime: Timespec | undefined;
  const fail = (error: Error): void => {
    waiting?.reject(error);
    waiting = undefined;
  };
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    firstByteTime ??= realtime();
    buffer += chunk;
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0 || waiting === undefined) return;
    const head = buffer.slice(0, end);
    buffer = buffer.slice(end + 4);
    const at = firstByteTime;
    firstByteTime = undefined;
    const current = waiting;
    waiting = undefined;
    current.resolve(head, at);
  });
  socket.on('error', (error) => fail(error));
  socket.on('close', () => fail(new Error(`connection to ${host}:${port} closed`)));
  const request = (method: string, target: string): Promise<HeadAnswer> =>
    new Promise<HeadAnswer>((resolve, reject) => {
      if (waiting !== undefined) throw new Error('one request at a time');
      if (socket.destroyed) return reject(new Error(`connection to ${host}:${port} is closed`));
      const timer = setTimeout(
        () => fail(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiting = {
        resolve: (head, receiveTime) => {
          clearTimeout(timer);
          const [statusLine = '', ...lines] = head.split('\r\n');
          const headers: Record<string, string> = {};
          for (const line of lines) {
            const colon = line.indexOf(':');
            if (colon < 0) continue;
            const name = line.slice(0, colon).trim().toLowerCase();
            const value = line.slice(colon + 1).trim();
            headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
          }
          resolve({ sendTime, receiveTime, status: Number(statusLine.split(' ')[1]), headers });
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const sendTime = realtime();
      const hostHeader = /^[a-z]+:\/\//.test(target)
        ? new URL(target).host
        : method === 'CONNECT'
          ? target
          : `${host}:${port}`;
      socket.write(
        `${method} ${target} HTTP/1.1\r\nHost: ${hostHeader}\r\nCache-Control: no-cache\r\nUser-Agent: ` +
          `htntp-test\r\n\r\n`,
      );
    });
  return {
    head: (target = '/') => request('HEAD', target),
    request,
    close: () => socket.destroy(),
  };
}
