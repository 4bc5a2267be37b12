// The `htntp http` command through the real bin: the default command (python-ntpdshm's
// invocation parses unchanged), runHttp returns its measurement, --once --dry-run --json
// prints exactly one object, exit 1 without an estimate.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli/index.js';
import { runHttp, type HttpOptions } from '../../../src/cli/commands/http.js';
import { flags, startHtntp } from '../../helpers/process.js';
import { closeAll, startTimeServers, type TimeServer } from '../../helpers/http/servers.js';

let servers: TimeServer[] = [];
beforeAll(async () => {
  servers = await startTimeServers([{ offset: 2.125 }, { offset: 2.125, format: 'asctime' }, { offset: -30 }]);
});
afterAll(async () => {
  await closeAll(servers);
});

describe('htntp http', () => {
  it('is the default command: the planned invocation parses unchanged', async () => {
    const program = (await buildProgram()).exitOverride();
    const http = program.commands.find((command) => command.name() === 'http');
    let seen: { servers: string[]; options: HttpOptions } | undefined;
    http?.action((servers: string[], options: HttpOptions) => {
      seen = { servers, options };
    });
    await program.parseAsync([
      'node',
      'htntp',
      '--unit',
      '2',
      '--interval',
      '300',
      '--proxy',
      '192.168.1.1:3128',
      'www.google.com.au',
      'www.ebay.com.au',
      'www.abc.net.au',
    ]);
    expect(seen?.servers).toEqual(['www.google.com.au', 'www.ebay.com.au', 'www.abc.net.au']);
    expect(seen?.options).toMatchObject({ unit: 2, interval: 300, proxy: '192.168.1.1:3128', probes: 8 });
    await program.parseAsync(['node', 'htntp']);
    expect(seen?.servers).toEqual([]); // runHttp then takes the embedded list
    expect(seen?.options.unit).toBe(2);
  });

  it(
    'runHttp --once --dry-run returns the measurement and leaves the options object as given',
    { timeout: 60_000 },
    async () => {
      const options: HttpOptions = {
        once: true,
        dryRun: true,
        json: true,
        quiet: true,
        interval: 300,
        probes: 4,
        logFormat: 'text',
      };
      const given = structuredClone(options);
      const run = await runHttp(
        servers.map((server) => server.url),
        options,
      );
      expect(run.exitCode).toBe(0);
      expect(run.published).toBeUndefined();
      expect(run.result?.servers.map((server) => server.status)).toEqual(['ok', 'ok', 'falseticker']);
      expect(Math.abs((run.result?.offset ?? Infinity) - 2.125)).toBeLessThanOrEqual((run.result?.error ?? 0) + 1e-6);
      expect(options).toEqual(given);
    },
  );

  it('--once --dry-run --json prints exactly one JSON object with every server', { timeout: 60_000 }, async () => {
    const run = startHtntp(['--once', '--dry-run', '--json', '--probes', '4', ...servers.map((server) => server.url)]);
    const exit = await run.exited;
    expect(exit, run.output()).toEqual({ code: 0, signal: null });
    expect(run.stdoutLines).toHaveLength(1);
    const result = JSON.parse(run.stdoutLines[0] ?? '') as Record<string, unknown> & {
      servers: Record<string, unknown>[];
      offset: number;
      error: number;
    };
    expect(Object.keys(result)).toEqual(expect.arrayContaining(['offset', 'error', 'servers']));
    expect(Math.abs(result.offset - 2.125)).toBeLessThanOrEqual(result.error + 1e-6);
    expect(result.servers.map((server) => server.status)).toEqual(['ok', 'ok', 'falseticker']);
    for (const server of result.servers) {
      expect(Object.keys(server)).toEqual(
        expect.arrayContaining(['url', 'offset', 'error', 'rtt', 'probes', 'status', 'reason']),
      );
    }
  });

  it('exits 1 with a clear line when no estimate can be made', { timeout: 60_000 }, async () => {
    const urls = ['http://127.0.0.1:1/', servers[2]?.url ?? '', servers[0]?.url ?? ''];
    const run = startHtntp(['http', ...flags({ once: true, 'dry-run': true, probes: 2 }), ...urls]);
    const exit = await run.exited;
    expect(exit.code, run.output()).toBe(1);
    expect(run.stdoutLines.at(-1)).toMatch(/^no estimate: no majority/);
    expect(
      run.stdoutLines.some((line) => /^failed +http:\/\/127\.0\.0\.1:1\/ .*refused: ECONNREFUSED/.test(line)),
    ).toBe(true);
  });

  it('rejects a bad server argument before anything starts', { timeout: 60_000 }, async () => {
    const run = startHtntp(['http', '--once', '--dry-run', 'ftp://example.com/']);
    const exit = await run.exited;
    expect(exit.code).toBe(1);
    expect(run.stderrLines.join('\n')).toMatch(/only http:\/\/ and https:\/\//);
  });
});
