import { describe, expect, it } from 'vitest';
import { conclude, type ServerEvidence } from '../../../src/sources/http/conclusion.js';
import type { ClockFault } from '../../../src/sources/http/interval.js';

const honest = (low: number, high: number): ServerEvidence => ({
  interval: { low, high },
  lows: [],
  rtts: [],
  failure: null,
});
const faulty = (kind: ClockFault['kind'], step: number | undefined): ServerEvidence => ({
  interval: undefined,
  lows: [],
  rtts: [],
  failure: kind,
  clockFault: { reason: kind, kind, step },
});
const silent: ServerEvidence = { interval: undefined, lows: [], rtts: [], failure: 'refused' };

describe('conclude: servers whose answers came from more than one clock', () => {
  it('names the time of most servers moving, by their median step, and publishes nothing', () => {
    const conclusion = conclude([
      faulty('stepped', 0.4),
      faulty('stuck', -0.3),
      faulty('clocks', 0.5),
      honest(0.2, 0.3),
    ]);
    expect(conclusion.moved?.step).toBeCloseTo(0.4, 9);
    expect(conclusion.bound).toBeUndefined();
    expect(conclusion.reason).toMatch(
      /^3 of the 4 servers answered from more than one clock \(a step of about \+0\.400 s/,
    );
  });

  it('publishes nothing where most moved, not even two that agree', () => {
    const moved = [faulty('clocks', undefined), faulty('clocks', undefined), faulty('stuck', -0.2)];
    const conclusion = conclude([...moved, honest(0.2, 0.3), honest(0.2, 0.3)]);
    expect(conclusion.moved).toEqual({ step: undefined });
    expect(conclusion.bound).toBeUndefined();
  });

  it('names no step that only a minority showed', () => {
    const conclusion = conclude([
      faulty('clocks', undefined),
      faulty('clocks', undefined),
      faulty('stepped', 3600),
      silent,
      silent,
    ]);
    expect(conclusion.moved).toEqual({ step: undefined });
  });

  it('publishes a majority beside a minority that moved', () => {
    const conclusion = conclude([faulty('stepped', 0.4), honest(0.2, 0.3), honest(0.25, 0.35)]);
    expect(conclusion.moved).toBeUndefined();
    expect(conclusion.bound).toEqual({ low: 0.2, high: 0.35 });
  });

  it('publishes one server alone beside a balancer, not beside any fault a step fits', () => {
    expect(conclude([faulty('clocks', undefined), honest(0.2, 0.3), silent]).bound).toEqual({ low: 0.2, high: 1.3 });
    for (const [kind, step] of [
      ['stepped', -0.4],
      ['stuck', -0.1],
      ['clocks', -0.4],
    ] as const) {
      const beside = conclude([faulty(kind, step), honest(0.2, 0.3), silent]);
      expect(beside.bound).toBeUndefined();
      expect(beside.moved).toBeUndefined();
      expect(beside.reason).toMatch(/^one server alone is not published beside 1 whose clock may have stepped/);
    }
  });
});
