// Several developers run the suite at once on one machine, so one test file can run twice
// concurrently on the same unit. A test that must be the segment's only writer (the
// torn-read test: two writers would tear each other) takes the unit for itself first.
import { NtpdShm } from '../../src/shm.js';
import { waitFor } from './wait.js';

/**
 * Creates the unit's segment for this process alone. While another process holds it, waits
 * (bounded); a leftover nobody is attached to is removed.
 */
export async function exclusiveSegment(unit: number, timeoutMs = 30_000): Promise<NtpdShm> {
  return waitFor(
    () => {
      const shm = new NtpdShm(unit);
      if (shm.created) return shm;
      if (shm.stat().nattch <= 1) shm.remove(); // only we are attached: a leftover
      shm.detach();
      return undefined;
    },
    { what: `unit ${unit} free of other processes`, timeoutMs, intervalMs: 100 },
  );
}
