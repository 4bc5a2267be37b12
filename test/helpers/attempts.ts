// For a resolution that depends on when the probes ran: a loaded machine delays some of
// them and can blur one measurement. Measure again (a bounded number of times) until one
// reaches the resolution; the caller asserts on every attempt what load cannot change (the
// truth within the published bound), and that one attempt was fine. A broken aim misses
// the resolution every time, so the test can still fail.

export interface Attempts<T> {
  /** Every result, in order. */
  results: T[];
  /** The first result that was fine, if any. */
  fine: T | undefined;
}

export async function untilFine<T>(
  attempts: number,
  run: () => Promise<T>,
  fine: (result: T) => boolean,
): Promise<Attempts<T>> {
  const results: T[] = [];
  for (let attempt = 0; attempt < attempts; attempt++) {
    const result = await run();
    results.push(result);
    if (fine(result)) return { results, fine: result };
  }
  return { results, fine: undefined };
}
