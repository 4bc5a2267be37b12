// The shared service options as commander parses them (no segment, no process).
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addServiceOptions } from '../../../src/cli/service.js';

function parse(args: string[]): Record<string, unknown> {
  const command = addServiceOptions(new Command('feeder'), { unit: 2 })
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action(() => {});
  command.parse(args, { from: 'user' });
  return command.opts();
}

describe('addServiceOptions', () => {
  it('defaults: unit, text logs, leap file and metrics left to runService', () => {
    expect(parse([])).toEqual({ unit: 2, logFormat: 'text', leapfile: undefined });
  });

  it('--sock-layout: native or 40, nothing else', () => {
    expect(parse(['--sock', '/run/htntp-sock/ntpd-rs.sock', '--sock-layout', '40'])).toMatchObject({
      sockLayout: '40',
    });
    expect(parse([]).sockLayout).toBeUndefined();
    expect(() => parse(['--sock-layout', '32'])).toThrow(/Allowed choices are native, 40/);
  });

  it('--metrics: a bare port stays on loopback; host:port; IPv6 in brackets; a value is required', () => {
    expect(() => parse(['--metrics'])).toThrow(/argument missing/);
    expect(parse(['--metrics', '9900']).metrics).toEqual({ host: '127.0.0.1', port: 9900 });
    expect(parse(['--metrics', '[::1]:9815']).metrics).toEqual({ host: '::1', port: 9815 });
    expect(() => parse(['--metrics', 'localhost'])).toThrow(/metrics address must be \[host:\]port/);
  });

  it('--leapfile <path>, --no-leapfile, --user/--group, --perm, json logs, quiet/verbose', () => {
    expect(parse(['--leapfile', '/etc/leap-seconds.list']).leapfile).toBe('/etc/leap-seconds.list');
    expect(parse(['--no-leapfile']).leapfile).toBe(false);
    expect(parse(['--user', 'htntp', '--group', 'dialout'])).toMatchObject({ user: 'htntp', group: 'dialout' });
    expect(parse(['--perm', '0644', '--log-format', 'json', '-q'])).toMatchObject({
      perm: 0o644,
      logFormat: 'json',
      quiet: true,
    });
    expect(() => parse(['--log-format', 'xml'])).toThrow(/Allowed choices are text, json/);
  });
});
