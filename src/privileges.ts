// --user/--group: give up root once the segment is attached (units 0-1 need root to
// create). setuid as root sets real, effective and saved ids: there is no way back.
import { execFileSync } from 'node:child_process';
import { silentLogger, type Logger } from './log.js';
import { codedError } from './errors.js';

export interface PrivilegeOptions {
  /** User name or uid to become. */
  user?: string;
  /** Group name or gid (default: the user's primary group). */
  group?: string;
}

export interface Identity {
  uid: number;
  gid: number;
  groups: number[];
}

function privilegeError(message: string, cause?: unknown): Error {
  return codedError(message, 'ERR_PRIVILEGE_DROP', {}, cause);
}

/** The primary group of `user` through NSS (`id -g`), so LDAP/sssd users work too. */
function primaryGroupOf(user: string): number {
  try {
    return Number(
      execFileSync('id', ['-g', '--', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim(),
    );
  } catch (error) {
    throw privilegeError(`no such user: ${user}`, error);
  }
}

function asId(value: string): string | number {
  return /^\d+$/.test(value) ? Number(value) : value;
}

/**
 * Checks --user/--group before anything is touched: the names resolve (NSS, so LDAP/sssd
 * too) and this process may switch. A failure here leaves no segment behind.
 */
export function checkPrivilegeOptions(options: PrivilegeOptions, euid: number | undefined = process.geteuid?.()): void {
  const { user, group } = options;
  if (user === undefined && group === undefined) return;
  if (user !== undefined && !/^\d+$/.test(user)) primaryGroupOf(user);
  if (group !== undefined && !/^\d+$/.test(group)) {
    try {
      execFileSync('getent', ['group', '--', group], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      throw privilegeError(`no such group: ${group}`, error);
    }
  }
  if (euid !== undefined && euid !== 0) {
    throw privilegeError(
      `--user/--group need root to switch (running as uid ${euid}): start as root, or leave them out`,
    );
  }
}

export function currentIdentity(): Identity {
  return { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, groups: process.getgroups?.() ?? [] };
}

/**
 * Switches to `user`/`group`: supplementary groups, then gid, then uid (the order that
 * still has the right to do each step). No-op without options. Throws if not permitted.
 */
export function dropPrivileges(options: PrivilegeOptions, logger: Logger = silentLogger): Identity | undefined {
  const { user, group } = options;
  if (user === undefined && group === undefined) return undefined;
  // initgroups exists on POSIX Node but is missing from @types/node 20.
  const { setuid, setgid, setgroups, initgroups } = process as NodeJS.Process & {
    initgroups?: (user: string | number, extraGroup: string | number) => void;
  };
  if (setuid === undefined || setgid === undefined || setgroups === undefined || initgroups === undefined) {
    throw privilegeError('--user/--group are not supported on this platform');
  }
  try {
    const gid = group !== undefined ? asId(group) : primaryGroupOf(user ?? '');
    if (user !== undefined) initgroups(asId(user), gid);
    else setgroups([gid]);
    setgid(gid);
    if (user !== undefined) setuid(asId(user));
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_PRIVILEGE_DROP') throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw privilegeError(
      `cannot switch to ${[user && `user ${user}`, group && `group ${group}`].filter(Boolean).join(' and ')}` +
        `: ${reason} (needs root)`,
      error,
    );
  }
  const identity = currentIdentity();
  logger.info('privileges dropped', { user, group, uid: identity.uid, gid: identity.gid });
  return identity;
}
