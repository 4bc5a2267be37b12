// One measurement on a virtual clock: each simulated server probed as measure.ts probes a
// real one (plan.ts decides the sweep, ticks, aims and verification probes; every answer
// goes through plan.observe, the bounds of interval.ts; the end through conclusion.conclude),
// events taken in time order so the team sees the answers that would have arrived. With
// the `sweep` strategy it is ServerClock's first measurement, and `interim` is what that
// publishes once more than half of the servers have swept. No sockets, no timers.
import type { ClockFault } from '../../src/sources/http/interval.js';
import {
  aimedProbeDue,
  checkOf,
  emptyServer,
  memberPlan,
  observe,
  planProbes,
  planSweep,
  planTeam,
  planTick,
  sendLagOf,
  settled,
  standingSupport,
  swept,
  type PlannedProbe,
  type ServerState,
  type Strategy,
  type MemberPlan,
  type TeamPlan,
} from '../../src/sources/http/plan.js';
import { conclude, conclusionError, type Conclusion } from '../../src/sources/http/conclusion.js';
import {
  asymmetrySigma,
  median,
  posteriorQuantiles,
  symmetricLow,
  type ProbeGroup,
} from '../../src/sources/http/posterior.js';
import { seededRandom } from '../helpers/random.js';
import { SimulatedServer, type SimServer } from './model.js';

export interface SimOutcome {
  conclusion: Conclusion;
  /**
   * Strategy `sweep`: the conclusion once more than half of the servers had swept (or every sweep ended), as measure.ts
   * reports it.
   */
  interim: Conclusion | undefined;
  /** The published half-width (undefined without an estimate). */
  error: number | undefined;
  /** Each server's state at the end and why it failed, if it did. */
  servers: { state: ServerState; failure: string | null }[];
}

interface Track {
  server: SimulatedServer;
  state: ServerState;
  failure: string | null;
  clockFault?: ClockFault;
  /** Aimed probes started (the first, unaimed, is 0). */
  aimed: number;
  queue: PlannedProbe[];
  /** Sweeping (strategy `sweep`): the queue holds the sweep's sends. */
  sweeping: boolean;
  /** The sweep is over, or was never to be. */
  sweepEnded: boolean;
  tick: number;
  next: { at: number; action: 'send' | 'decide' | 'done'; probe?: PlannedProbe };
}

/** Where the virtual local clock starts (seconds): whole nanoseconds stay exact in a double. */
const START = 1_000_000;

export function simulate(
  servers: readonly SimServer[],
  { probes = 8, seed = 1, strategy = 'bisect' }: { probes?: number; seed?: number; strategy?: Strategy } = {},
): SimOutcome {
  const uniform = seededRandom(seed);
  const tracks: Track[] = servers.map((server) => ({
    server: new SimulatedServer(server, uniform),
    state: server.dead ? { ...emptyServer(undefined), failed: true } : emptyServer(undefined),
    failure: server.dead ? 'refused: ECONNREFUSED' : null,
    aimed: 0,
    queue: [],
    sweeping: false,
    sweepEnded: server.dead === true,
    tick: 0,
    // Connections open within 10 ms of each other.
    next: server.dead ? { at: Infinity, action: 'done' } : { at: START + uniform() * 0.01, action: 'send' },
  }));
  const evidence = (): Parameters<typeof conclude>[0] =>
    tracks.map((track) => ({
      interval: track.state.failed ? undefined : track.state.interval,
      lows: track.state.lows,
      rtts: track.state.rtts,
      failure: track.failure,
      clockFault: track.clockFault,
    }));
  let interim: Conclusion | undefined;
  const endSweep = (track: Track): void => {
    if (track.sweepEnded) return;
    track.sweepEnded = true;
    if (strategy !== 'sweep' || interim !== undefined) return;
    const sweptCount = tracks.filter((other) => other.sweepEnded && other.failure === null).length;
    if (sweptCount * 2 <= tracks.length && !tracks.every((other) => other.sweepEnded)) return;
    const pending = tracks.filter((other) => other.failure === null && other.state.interval === undefined).length;
    interim = conclude(evidence(), { electorate: { servers: tracks.length, pending } });
  };
  let team: readonly number[] | undefined;
  let teamCache: { version: number; turn: number; plan: TeamPlan } | undefined;
  let version = 0;
  const teamOf = (index: number, turn: number): MemberPlan => {
    if (teamCache?.version !== version || teamCache.turn !== turn) {
      const plan = planTeam({ servers: tracks.map((track) => track.state), team }, turn);
      team = plan.team;
      teamCache = { version, turn, plan };
    }
    return memberPlan(teamCache.plan, index);
  };
  const scheduleTick = (track: Track, now: number): void => {
    track.aimed += 1;
    const support = standingSupport(
      { servers: tracks.map((other) => other.state), team },
      teamCache?.plan,
      tracks.indexOf(track),
    );
    const tick = aimedProbeDue(track.state, track.aimed, probes)
      ? planTick(track.state, now, track.aimed, probes, support)
      : undefined;
    if (tick === undefined) {
      track.next = { at: Infinity, action: 'done' };
      track.state = settled(track.state);
      version += 1;
      return;
    }
    if (tick.dropPrior) track.state = { ...track.state, prior: undefined };
    track.state = { ...track.state, lastTick: tick.tick };
    track.tick = tick.tick;
    track.next = { at: Math.max(now, tick.decideAt), action: 'decide' };
  };
  for (;;) {
    let index = -1;
    tracks.forEach((track, candidate) => {
      if (track.next.action !== 'done' && (index < 0 || track.next.at < (tracks[index]?.next.at ?? Infinity)))
        index = candidate;
    });
    const track = tracks[index];
    if (track === undefined) break;
    const now = track.next.at;
    if (track.next.action === 'decide') {
      const { aim, support, spread } = teamOf(index, track.tick);
      track.queue = planProbes(track.state, track.tick, aim, track.aimed, probes, support, spread);
      const first = track.queue.shift();
      track.next = first
        ? { at: Math.max(now, first.sendAt), action: 'send', probe: first }
        : { at: Infinity, action: 'done' };
      continue;
    }
    const answer = track.server.answer(now);
    // Released late only behind the server's previous answer (the model's loop is never busy).
    const planned = track.next.probe;
    const next = observe(track.state, { ...answer, check: checkOf(planned), sendLag: sendLagOf(planned, now) });
    if (next.fault !== undefined) {
      track.failure = next.fault.reason;
      track.clockFault = next.fault;
      track.state = { ...track.state, interval: undefined, failed: true };
      track.next = { at: Infinity, action: 'done' };
      version += 1;
      endSweep(track);
      continue;
    }
    // The state changes when the answer arrives: only then can others' plans see it.
    track.state = next.server;
    version += 1;
    if (strategy === 'sweep' && !track.sweeping && !track.sweepEnded) {
      track.sweeping = true;
      track.queue = planSweep(answer.arrives);
    }
    if (track.sweeping && (swept(track.state) || track.queue.length === 0)) {
      track.sweeping = false;
      track.queue = [];
    }
    if (!track.sweeping) endSweep(track);
    const following = track.queue.shift();
    if (following) track.next = { at: Math.max(answer.arrives, following.sendAt), action: 'send', probe: following };
    else scheduleTick(track, answer.arrives);
  }
  const conclusion = conclude(evidence());
  return {
    conclusion,
    interim,
    error: conclusionError(conclusion),
    servers: tracks.map((track) => ({ state: track.state, failure: track.failure })),
  };
}

/**
 * The floor of jittery paths, as `bench:http -- floor` measures it on real sockets: every
 * probe sent so that the middle of its round trip lands on the server's true tick (an aim
 * that knew the answer), the same estimator. Servers must each be one clock at `truth`.
 */
export function oracle(
  servers: readonly SimServer[],
  truth: number,
  { probes = 8, seed = 1 } = {},
): { joint: number; perServer: number[] } {
  const uniform = seededRandom(seed);
  const groups: ProbeGroup[] = servers.map((server) => {
    const simulated = new SimulatedServer(server, uniform);
    const rtts: number[] = [];
    const lows: number[] = [];
    const warm = simulated.answer(START);
    const warmRtt = warm.arrives - START;
    for (let round = 0; round < probes; round += 1) {
      const tick = Math.ceil(START + truth) + 1 + round - truth;
      const sendAt = tick - median(rtts.length > 0 ? rtts : [warmRtt]) / 2;
      const answer = simulated.answer(sendAt);
      rtts.push(answer.arrives - sendAt);
      lows.push(symmetricLow(answer.dateSeconds, answer.sendTime, answer.receiveTime));
    }
    return { lows, sigma: asymmetrySigma(rtts) };
  });
  const support = { low: truth - 0.5, high: truth + 0.5 };
  const [joint = NaN] = posteriorQuantiles(groups, support, [0.5]);
  const perServer = groups.map((group) => posteriorQuantiles([group], support, [0.5])[0] ?? NaN);
  return { joint, perServer };
}
