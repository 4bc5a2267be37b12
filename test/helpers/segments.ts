// Segments in tests: read without disturbing anyone, and clean up a unit for good.
import { NtpdShm, type ShmSnapshot } from '../../src/shm.js';
import { waitFor } from './wait.js';

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Removes the unit's segment (IPC_RMID + detach); a unit without one is fine. */
export function removeSegment(unit: number): void {
  let shm: NtpdShm;
  try {
    shm = new NtpdShm({ unit, create: false });
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  try {
    shm.remove();
  } finally {
    shm.detach();
  }
}

/** A read-only snapshot of the unit's segment, or undefined if it does not exist. */
export function readSegment(unit: number): ShmSnapshot | undefined {
  let shm: NtpdShm;
  try {
    shm = new NtpdShm({ unit, create: false, readOnly: true });
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  try {
    return shm.snapshot();
  } finally {
    shm.detach();
  }
}

/** Waits (5 s at most) until the unit's count has reached `count`: each sample adds 2. */
export async function waitForCount(unit: number, count: number, what: string): Promise<void> {
  await waitFor(() => ((readSegment(unit)?.count ?? 0) >= count ? true : undefined), {
    what,
    timeoutMs: 20_000,
    intervalMs: 50,
  });
}
