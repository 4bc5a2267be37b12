// Simulated web servers and the paths to them, on a virtual clock, for driving plan.ts
// and posterior.ts without sockets. Everything random comes from one seeded generator, so
// a run is a function of its seed.
import { fromSeconds } from '../../src/time.js';

export interface SimPath {
  /** Seconds from the send to the server's stamp. */
  up: number;
  /** Seconds from the stamp to the first byte back. */
  down: number;
  /** Each leg gets a uniform extra in [-jitter, +jitter] seconds. */
  jitter: number;
  /** A loaded machine: with this probability a leg is held up to `max` seconds more (uniform). */
  spikes?: { probability: number; max: number };
}

export interface SimServer {
  /** Server clock - local clock of each backend (one: one clock), seconds. */
  clocks: readonly number[];
  /** How a load balancer picks the backend: in turn, or at random. */
  balance?: 'round-robin' | 'random';
  /** The Date second changes this long after the clock's (a Date cache refreshed on another timer). */
  lag?: number;
  /** Up to this long after its tick, a cached Date string may still name the previous second (uniform). */
  stale?: number;
  /** The clock steps by `by` seconds at local time `at`. */
  step?: { at: number; by: number };
  /** Refuses connections: it fails at once, and still counts against the majority. */
  dead?: boolean;
  path: SimPath;
}

export interface SimAnswer {
  dateSeconds: number;
  sendTime: ReturnType<typeof fromSeconds>;
  receiveTime: ReturnType<typeof fromSeconds>;
  /** Local time the answer arrives (seconds). */
  arrives: number;
}

/** A server being probed: its answers in order, each from the backend its balance picks. */
export class SimulatedServer {
  readonly #server: SimServer;
  readonly #uniform: () => number;
  #requests = 0;

  constructor(server: SimServer, uniform: () => number) {
    this.#server = server;
    this.#uniform = uniform;
  }

  /** The clock (server - local) that stamps at local time `at` for request number `request`. */
  #clock(at: number, request: number): number {
    const { clocks, balance = 'round-robin', step } = this.#server;
    const backend = balance === 'random' ? Math.floor(this.#uniform() * clocks.length) : request % clocks.length;
    const stepped = step && at >= step.at ? step.by : 0;
    return (clocks[backend] ?? 0) + stepped;
  }

  answer(sendAt: number): SimAnswer {
    const { path, lag = 0, stale = 0 } = this.#server;
    const { spikes } = path;
    const spike = (): number => (spikes && this.#uniform() < spikes.probability ? this.#uniform() * spikes.max : 0);
    const leg = (base: number): number => Math.max(0, base + (2 * this.#uniform() - 1) * path.jitter) + spike();
    const stampAt = sendAt + leg(path.up);
    const reading = stampAt + this.#clock(stampAt, this.#requests);
    this.#requests += 1;
    const cached = stale > 0 ? this.#uniform() * stale : 0;
    const dateSeconds = Math.floor(reading - lag - cached);
    const arrives = stampAt + leg(path.down);
    return { dateSeconds, sendTime: fromSeconds(sendAt), receiveTime: fromSeconds(arrives), arrives };
  }
}
