// The kernel's word on the local clock as tests inject it (the host's cannot be changed by a
// test: gate.ts reads it through kernelClockForTests), and the check that a measurement
// holds the truth.
import { expect } from 'vitest';
import type { ClockSync } from '../../../src/clock.js';
import type { MeasurementResult } from '../../../src/sources/http/measure.js';

export const SYNCHRONISED = {
  kernelClockForTests: (): ClockSync => ({ synchronised: true, maxError: 0.05, status: 0x1 }),
};
export const UNSYNCHRONISED = {
  kernelClockForTests: (): ClockSync => ({ synchronised: false, maxError: 16, status: 0x41 }),
};

/** The result's offset ± error holds `truth` (1 ms for rounding). */
export function expectNear(result: MeasurementResult, truth: number): void {
  expect(result.offset).not.toBeNull();
  expect(Math.abs((result.offset ?? NaN) - truth)).toBeLessThanOrEqual((result.error ?? NaN) + 1e-3);
}
