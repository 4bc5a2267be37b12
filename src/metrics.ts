// Prometheus text endpoint (`--metrics host:port`, loopback by default): what the feeder
// published and what sources report through `SourceMetrics`. Own Registry, so an app
// embedding htntp keeps its global registry to itself.
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { Counter, Gauge, Registry } from 'prom-client';
import { systemClock, type Clock } from './clock.js';
import type { Leap } from './shm.js';
import { STALE_SAMPLE_SECONDS, type Sample } from './sample.js';
import { diffSeconds } from './time.js';
import { redactCredentials, silentLogger, type Logger } from './log.js';
import { invalidArgValue } from './errors.js';

/** What a source may report (ServiceContext.metrics). Every method is cheap and never throws. */
export interface SourceMetrics {
  /** HTTP: one server's outcome in the latest measurement (`server` is its URL; credentials are removed). */
  server(server: string, result: ServerReport): void;
  /** GPS: the fix state, whenever a sentence carrying one arrives. */
  fix(state: FixState): void;
}

export interface ServerReport {
  status: 'ok' | 'falseticker' | 'failed';
  /** Round trip of the server's best probe, seconds. */
  rtt?: number;
  /** Server time - local time, seconds. */
  offset?: number;
}

export interface FixState {
  valid: boolean;
  /** Consecutive good fixes so far (publishing starts at --min-fixes). */
  consecutive?: number;
  satellites?: number;
}

/** What the feeder reports (FeedOptions.metrics). */
export interface FeedMetrics {
  published(sample: Sample, leap: Leap): void;
  reattached(): void;
  /** One sample's fate at one sink (`shm:2`, `sock:/run/...`); undefined: the sink opened (its counters start at 0). */
  sinkResult(sink: string, sent: boolean | undefined): void;
}

type PromClient = typeof import('prom-client');
let promClient: PromClient | undefined;
/** prom-client, loaded with the first ServiceMetrics: a feeder without --metrics never carries its ~12 MB. */
function prom(): PromClient {
  promClient ??= createRequire(import.meta.url)('prom-client') as PromClient;
  return promClient;
}

export const noSourceMetrics: SourceMetrics = { server() {}, fix() {} };

const SERVER_STATUSES = ['ok', 'falseticker', 'failed'] as const;

/** Metrics of one feeder. Per-sample and GPS gauges appear with their first value, never as a misleading 0. */
export class ServiceMetrics implements SourceMetrics, FeedMetrics {
  readonly registry: Registry = new (prom().Registry)();
  readonly #clock: Clock;
  readonly #published: Counter;
  readonly #reattaches: Counter;
  readonly #sinkSent: Counter;
  readonly #sinkErrors: Counter;
  readonly #serverStatus: Gauge;
  readonly #serverRtt: Gauge;
  readonly #serverOffset: Gauge;
  #sampleGauges: { offset: Gauge; errorBound: Gauge; leap: Gauge; lastSample: Gauge } | undefined;
  #gpsGauges: { fix: Gauge; consecutive: Gauge; satellites: Gauge } | undefined;
  #lastReceive: Sample['receiveTime'] | undefined;
  readonly #info: Gauge;

  /** `unit`: the SHM unit, a label on every metric (none when the feeder writes sockets only). */
  constructor(options: { unit?: number; source?: string; clock?: Clock; processMetrics?: boolean }) {
    this.#clock = options.clock ?? systemClock;
    if (options.unit !== undefined) this.registry.setDefaultLabels({ unit: String(options.unit) });
    if (options.processMetrics ?? true) prom().collectDefaultMetrics({ register: this.registry });
    this.#info = this.#gauge('htntp_info', 'The running feeder (value 1)', ['source']);
    this.#gauge(
      'htntp_up',
      `1 while the last published sample is at most ${STALE_SAMPLE_SECONDS} s old (a daemon can use it), else 0`,
      [],
      (gauge) => {
        const fresh =
          this.#lastReceive !== undefined &&
          diffSeconds(this.#clock.realtime(), this.#lastReceive) <= STALE_SAMPLE_SECONDS;
        gauge.set(fresh ? 1 : 0);
      },
    );
    if (options.source !== undefined) this.setSource(options.source);
    const registers = [this.registry];
    this.#published = new (prom().Counter)({
      name: 'htntp_samples_published_total',
      help: 'Samples written to the segment',
      registers,
    });
    this.#reattaches = new (prom().Counter)({
      name: 'htntp_segment_reattaches_total',
      help: 'Times the segment was removed under the feeder and attached anew',
      registers,
    });
    this.#sinkSent = new (prom().Counter)({
      name: 'htntp_sink_samples_sent_total',
      help: 'Samples that reached a sink (shm:UNIT, sock:PATH)',
      labelNames: ['sink'],
      registers,
    });
    this.#sinkErrors = new (prom().Counter)({
      name: 'htntp_sink_errors_total',
      help: 'Samples a sink did not deliver (reader down, refused, rejected)',
      labelNames: ['sink'],
      registers,
    });
    this.#serverStatus = this.#gauge(
      'htntp_http_server_status',
      'HTTP: 1 for the status of each server in the latest measurement',
      ['server', 'status'],
    );
    this.#serverRtt = this.#gauge('htntp_http_server_rtt_seconds', 'HTTP: round trip of the best probe per server', [
      'server',
    ]);
    this.#serverOffset = this.#gauge('htntp_http_server_offset_seconds', 'HTTP: server time - local time per server', [
      'server',
    ]);
  }

  #gauge(name: string, help: string, labelNames: string[] = [], collect?: (gauge: Gauge) => void): Gauge {
    return new (prom().Gauge)({
      name,
      help,
      labelNames,
      registers: [this.registry],
      ...(collect === undefined
        ? {}
        : {
            collect() {
              collect(this);
            },
          }),
    });
  }

  /** Names the source in htntp_info (known once the command has built it). */
  setSource(name: string): void {
    this.#info.reset();
    this.#info.set({ source: name }, 1);
  }

  published(sample: Sample, leap: Leap): void {
    this.#sampleGauges ??= {
      offset: this.#gauge(
        'htntp_offset_seconds',
        'Last published sample: clock - receive time (reference minus local clock)',
      ),
      errorBound: this.#gauge('htntp_error_bound_seconds', 'Last published sample: error bound, 2^precision'),
      leap: this.#gauge(
        'htntp_leap_indicator',
        'Last published sample: leap (0 none, 1 insert, 2 delete, 3 not in sync)',
      ),
      lastSample: this.#gauge(
        'htntp_last_sample_timestamp_seconds',
        'Last published sample: receive time (Unix seconds)',
      ),
    };
    if (this.#lastReceive === undefined) {
      this.#gauge('htntp_sample_age_seconds', 'Seconds since the last published sample was received', [], (gauge) => {
        if (this.#lastReceive !== undefined) gauge.set(diffSeconds(this.#clock.realtime(), this.#lastReceive));
      });
    }
    this.#published.inc();
    this.#sampleGauges.offset.set(diffSeconds(sample.clockTime, sample.receiveTime));
    this.#sampleGauges.errorBound.set(2 ** sample.precision);
    this.#sampleGauges.leap.set(leap);
    this.#sampleGauges.lastSample.set(sample.receiveTime.sec + sample.receiveTime.nsec / 1e9);
    this.#lastReceive = sample.receiveTime;
  }

  reattached(): void {
    this.#reattaches.inc();
  }

  sinkResult(sink: string, sent: boolean | undefined): void {
    if (sent === undefined) {
      this.#sinkSent.inc({ sink }, 0);
      this.#sinkErrors.inc({ sink }, 0);
    } else if (sent) {
      this.#sinkSent.inc({ sink });
    } else {
      this.#sinkErrors.inc({ sink });
    }
  }

  server(server: string, result: ServerReport): void {
    const label = redactCredentials(server);
    for (const status of SERVER_STATUSES)
      this.#serverStatus.set({ server: label, status }, status === result.status ? 1 : 0);
    if (result.rtt === undefined) this.#serverRtt.remove({ server: label });
    else this.#serverRtt.set({ server: label }, result.rtt);
    if (result.offset === undefined) this.#serverOffset.remove({ server: label });
    else this.#serverOffset.set({ server: label }, result.offset);
  }

  fix(state: FixState): void {
    this.#gpsGauges ??= {
      fix: this.#gauge('htntp_gps_fix', 'GPS: 1 while the receiver reports a valid fix'),
      consecutive: this.#gauge('htntp_gps_consecutive_fixes', 'GPS: consecutive valid fixes'),
      satellites: this.#gauge('htntp_gps_satellites', 'GPS: satellites used'),
    };
    this.#gpsGauges.fix.set(state.valid ? 1 : 0);
    if (state.consecutive !== undefined) this.#gpsGauges.consecutive.set(state.consecutive);
    if (state.satellites !== undefined) this.#gpsGauges.satellites.set(state.satellites);
  }
}

export interface MetricsAddress {
  host: string;
  port: number;
}

export const DEFAULT_METRICS_ADDRESS: MetricsAddress = { host: '127.0.0.1', port: 9815 };

/** `9815`, `host:9815`, `[::1]:9815`; the host defaults to 127.0.0.1 (loopback). */
export function parseMetricsAddress(text: string): MetricsAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:[\]]*):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port > 65_535) {
    throw invalidArgValue(`metrics address must be [host:]port, e.g. 127.0.0.1:9815; got ${JSON.stringify(text)}`);
  }
  const host = match[1] ?? (match[2] || DEFAULT_METRICS_ADDRESS.host);
  return { host, port };
}

export interface MetricsServer {
  /** e.g. http://127.0.0.1:9815/metrics (the port the OS chose when 0 was asked) */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `registry` at /metrics (and /) until close(). Rejects if the address is taken. */
export async function serveMetrics(
  registry: Registry,
  address: MetricsAddress,
  logger: Logger = silentLogger,
): Promise<MetricsServer> {
  // node:http only with --metrics: a feeder without it stays smaller.
  const { createServer } = await import('node:http');
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics' && path !== '/') {
      response.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) =>
        response
          .writeHead(200, { 'content-type': registry.contentType })
          .end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => {
        logger.warn('metrics failed', { error });
        response.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The endpoint must never keep a stopping feeder alive.
  server.unref();
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  const url = `http://${host}:${port}/metrics`;
  logger.info('metrics listening', { url });
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
