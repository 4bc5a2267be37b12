// The servers of one measurement seen together. Servers that agree measure one theta (web
// servers keep UTC), so their probes are aimed as a team: each at its own quantile of the
// joint posterior. N servers then split what is left N + 1 ways per second instead of two
// each along the same lines (servers probed side by side would otherwise bisect the same
// grid and share one error), and with noisy paths their probes all land where the answer
// is still in doubt.
//
// A team forms from a majority of intervals that are nearly the same (after the first
// answers, servers with one time have the very same interval), never from intervals that
// merely touch: a sliver where two groups' edges meet looks like agreement, and round
// trips can keep the probes aimed there from ever cutting it. It then only loses members: those whose
// intervals leave the rest (Marzullo among the team), and those whose own probes make the
// team's median unlikely. A member's aim must be plausible under its own probes too.
import { asymmetrySigma, bestLogLikelihood, logLikelihoodAt, posteriorQuantiles, type ProbeGroup } from './estimate.js';
import { intersect, midpoint, selectMajority, type Interval } from './interval.js';

/** A member is out of the team where its own probes make the team's median e^4 (~55x) less likely than their best. */
const UNLIKELY = 4;

/**
 * Servers are "nearly the same" when their symmetric intervals share at least this much of
 * each: after one probe, clocks up to 50 ms apart. Clocks a fraction of a second apart must
 * not team up: each would spend its probes where the others' time is.
 */
const SAME = 0.95;

interface Member {
  state: 'pending' | 'answered' | 'failed';
  interval: Interval | undefined;
  lows: readonly number[];
  rtts: readonly number[];
  prior: Interval | undefined;
  /** The most its own log-likelihood reaches in its interval, worked out once per answer. */
  best: number | undefined;
}

const width = (interval: Interval): number => interval.high - interval.low;

interface Answered {
  index: number;
  interval: Interval;
}

/** The part all of `answered` share, or undefined. */
const common = (answered: readonly Answered[]): Interval | undefined =>
  answered.reduce<Interval | undefined>((shared, { interval }) => shared && intersect(shared, interval), answered[0]?.interval);

export class Ensemble {
  readonly #members: Member[];
  /** Bumped on every change: aims are computed once per state and shared by all servers. */
  #version = 0;
  #aims: { version: number; byServer: Map<number, number> } | undefined;
  /** undefined until formed; once formed it only shrinks (empty: disbanded). */
  #team: number[] | undefined;

  constructor(priors: readonly (Interval | undefined)[]) {
    this.#members = priors.map((prior) => ({ state: 'pending', interval: undefined, lows: [], rtts: [], prior, best: undefined }));
  }

  /**
   * A server's state after a probe (or its failure: interval undefined drops it). `lows`
   * and `rtts` are the server's own arrays, only ever appended to before the next update.
   */
  update(index: number, interval: Interval | undefined, lows: readonly number[], rtts: readonly number[]): void {
    const member = this.#members[index];
    if (member === undefined) return;
    Object.assign(member, { interval, lows, rtts, state: interval ? 'answered' : 'failed', best: undefined });
    this.#version += 1;
  }

  /** A server's prior that its answers have left behind: it no longer steers the team. */
  forgetPrior(index: number): void {
    const member = this.#members[index];
    if (member?.prior === undefined) return;
    member.prior = undefined;
    this.#version += 1;
  }

  /** The probes of `indexes` for a posterior. */
  groups(indexes: readonly number[]): ProbeGroup[] {
    return indexes.flatMap((index) => {
      const member = this.#members[index];
      return member && member.lows.length > 0 ? [{ lows: member.lows, sigma: asymmetrySigma(member.rtts) }] : [];
    });
  }

  /**
   * Where server `index` should aim its next probe as one of the team, or undefined when
   * it is not in a team of at least two (then it aims on its own).
   */
  jointAim(index: number): number | undefined {
    if (this.#aims?.version !== this.#version) this.#aims = { version: this.#version, byServer: this.#teamAims() };
    return this.#aims.byServer.get(index);
  }

  /** The servers (all, or of `indexes`) that have an interval, each with it. */
  #answered(indexes?: readonly number[]): Answered[] {
    return (indexes ?? this.#members.map((_, index) => index)).flatMap((index) => {
      const interval = this.#members[index]?.interval;
      return interval ? [{ index, interval }] : [];
    });
  }

  /**
   * The largest set of servers whose intervals are nearly the same, if it is a majority of
   * those that answered; none until every server has answered (or failed), or a second
   * round has begun without the slow ones.
   */
  #form(): number[] {
    const waiting = this.#members.some((member) => member.state === 'pending');
    if (waiting && !this.#members.some((member) => member.lows.length >= 2)) return [];
    // Compared on their symmetric bounds, which are a second wide whatever the round trip:
    // servers that keep one time then differ by the legs' asymmetry alone.
    const answered = this.#answered().map(({ index }) => ({ index, interval: this.#symmetric(index) }));
    const alike = (a: Interval, b: Interval): boolean => {
      const common = intersect(a, b);
      return common !== undefined && width(common) >= SAME * Math.max(width(a), width(b));
    };
    let best: number[] = [];
    for (const candidate of answered) {
      const group = answered.filter((other) => alike(candidate.interval, other.interval));
      if (group.length > best.length) best = group.map((other) => other.index);
    }
    // Servers that keep one time are most of them; a minority alike may be chance (clocks
    // a fraction of a second apart), and teaming them up would cost them probes.
    return best.length * 2 > answered.length ? best : [];
  }

  /** Where a server's probes put theta taking each stamp at the middle of its round trip (a point where they cross). */
  #symmetric(index: number): Interval {
    const lows = this.#members[index]?.lows ?? [];
    const low = Math.max(...lows);
    const high = Math.min(...lows) + 1;
    return high >= low ? { low, high } : { low: (low + high) / 2, high: (low + high) / 2 };
  }

  /**
   * Whether `theta` is plausible under server `index`'s own probes: no more than e^UNLIKELY
   * less likely than their best in its interval.
   */
  #plausible(index: number, theta: number): boolean {
    const member = this.#members[index];
    const [group] = this.groups([index]);
    if (!member?.interval || !group) return member?.interval !== undefined;
    member.best ??= bestLogLikelihood(group, member.interval);
    return logLikelihoodAt(group, theta) - member.best > -UNLIKELY;
  }

  /**
   * The team as it stands: members still answering, agreeing among themselves and with its
   * median; with the team's aims over its common interval when they came with that median.
   */
  #current(): { members: number[]; support: Interval; aims: number[] | undefined } | undefined {
    if (this.#team === undefined) {
      const formed = this.#form();
      if (formed.length < 2) return undefined;
      this.#team = formed;
    }
    let members = this.#answered(this.#team);
    // Intervals that no longer meet: the team's own majority stays, the rest leave.
    const selection = selectMajority(members.map((member) => member.interval));
    members = selection ? selection.truechimers.flatMap((position) => members[position] ?? []) : [];
    // The median and the aims come from one posterior: it is the costly part (20 servers
    // x 8 probes: ~6 ms), and it runs in the window before the next sends.
    let aims: number[] | undefined;
    for (let pass = 0; pass < 2 && members.length >= 2; pass += 1) {
      const support = common(members);
      if (support === undefined) break;
      const [median = midpoint(support), ...quantiles] = posteriorQuantiles(
        this.groups(members.map((member) => member.index)),
        support,
        [0.5, ...teamQuantiles(members.length)],
      );
      const consistent = members.filter((member) => this.#plausible(member.index, median));
      if (consistent.length === members.length) {
        aims = quantiles;
        break;
      }
      members = consistent;
    }
    this.#team = members.map((member) => member.index);
    const support = common(members);
    return members.length >= 2 && support ? { members: this.#team, support, aims } : undefined;
  }

  #teamAims(): Map<number, number> {
    const team = this.#current();
    if (team === undefined) return new Map();
    const { members, support } = team;
    // The priors only place the aim (never a bound): the region more than half of the team's
    // members share, where the answers so far allow it.
    const priors = members.flatMap((index) => this.#members[index]?.prior ?? []);
    const shared = selectMajority(priors);
    const prior = shared && shared.truechimers.length * 2 > members.length ? intersect(shared.interval, support) : undefined;
    const aims = prior || !team.aims ? posteriorQuantiles(this.groups(members), prior ?? support, teamQuantiles(members.length)) : team.aims;
    // A member takes its aim where its own probes leave it plausible. At the edge of its own
    // interval is fine (a member whose probes all fell on one side of the truth has its
    // interval's edge there, and that is where the team needs it); well outside, the answer
    // would teach it nothing.
    return new Map(
      members.flatMap((index, rank) => {
        const aim = aims[rank];
        return aim !== undefined && this.#plausible(index, aim) ? [[index, aim]] : [];
      }),
    );
  }
}

/** Where the k-th of `count` members aims: its own quantile, k / (count + 1). */
const teamQuantiles = (count: number): number[] => Array.from({ length: count }, (_, rank) => (rank + 1) / (count + 1));
