// The one rule on how an https server's answers count, for every caller (measure(), and so
// the feeder and measureOffset(); ServerClock, whose every round is a measurement).
//
// While the local clock is known to be right (the kernel says a daemon keeps it
// synchronised, and it reads after the floor, floor.ts), certificates are judged at it:
// Node's verification stands, and a chain that fails only for time is refused like any
// other TLS failure. Otherwise (unsynchronised, or before the floor) the local clock cannot
// judge a certificate's time, and every server is judged the same way: OpenSSL verifies its
// chain at the time the server itself claims (the first Date on each connection), with the
// trust set of the strict connection. Passing at the local clock then gives no extra
// weight: an old certificate is valid at a wrong local time.
import { clockSync, type ClockSync } from '../../clock.js';
import { codedError } from '../../errors.js';
import { clockFloor, clockFilePath, describeFloor, type ClockFloor } from '../../floor.js';
import { formatDuration } from '../../time.js';
import { verifyChainAt, type CertificateWindow, type TlsConnection, type TlsTrust } from './tls.js';

/** Past this the kernel itself calls the clock unsynchronised (NTP_PHASE_LIMIT, Linux's 16 s maxerror). */
const MAX_SYNCHRONISED_ERROR = 16;

export interface LocalClockOptions {
  /** The last-good time file (floor.ts): default HTNTP_CLOCK_FILE, else /var/lib/htntp/clock; null: none. */
  clockFile?: string | null;
  /**
   * Tests only: the kernel's word on the clock in place of ntp_adjtime()'s. (HTNTP_ASSUME_SYNCHRONISED=1
   * in the environment can only make the gate stricter: the clock counts as synchronised
   * unless it reads before the floor.)
   */
  kernelClockForTests?: () => ClockSync;
}

/** Whether the local clock is known to be right, and why (or why not). */
export interface LocalClockVerdict {
  known: boolean;
  why: string;
  floor: ClockFloor;
}

/**
 * The local clock's standing at `nowSeconds` (CLOCK_REALTIME): not known to be right only
 * when it reads before the floor or the kernel says unsynchronised. A kernel that cannot be
 * asked (ntp_adjtime refused, as by systemd's ProtectClock=) has not said so: the strict
 * rule holds.
 */
export function localClockVerdict(nowSeconds: number, options: LocalClockOptions = {}): LocalClockVerdict {
  const floor = clockFloor(clockFilePath(options.clockFile));
  if (nowSeconds < floor.seconds) {
    return { known: false, why: `the local clock reads before the floor ${describeFloor(floor)}`, floor };
  }
  const after = `and it reads after the floor ${describeFloor(floor)}`;
  if (process.env.HTNTP_ASSUME_SYNCHRONISED === '1') {
    return { known: true, why: `HTNTP_ASSUME_SYNCHRONISED=1 ${after}`, floor };
  }
  let kernel: ClockSync;
  try {
    kernel = options.kernelClockForTests?.() ?? clockSync();
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    const why = `the kernel's clock state cannot be read (${cause}), so it has not said unsynchronised, ${after}`;
    return { known: true, why, floor };
  }
  if (!kernel.synchronised || kernel.maxError >= MAX_SYNCHRONISED_ERROR) {
    const state = kernel.synchronised ? `has a maxerror of ${formatDuration(kernel.maxError)}` : 'says unsynchronised';
    return { known: false, why: `the kernel's clock state ${state}`, floor };
  }
  const maxError = formatDuration(kernel.maxError);
  return { known: true, why: `the kernel says the local clock is synchronised (maxerror ${maxError}) ${after}`, floor };
}

/** How a connection counts once judged. */
export interface AdmittedTls {
  trust: TlsTrust;
  /** The certificates whose windows the published time must lie in (validity.ts). */
  windows: CertificateWindow[];
}

export class TlsGate {
  readonly #ca: string | Buffer | undefined;
  /** The local clock's standing, taken once for the measurement. */
  readonly clock: LocalClockVerdict;

  /** `ca`: the extra trusted CAs the connections were made with (--ca). */
  constructor(ca: string | Buffer | undefined, clock: LocalClockVerdict) {
    this.#ca = ca;
    this.clock = clock;
  }

  /**
   * How `connection` counts, given the first Date its server sent on it (seconds since the
   * epoch); throws an Error with OpenSSL's code and the reason when it does not.
   */
  admit(connection: TlsConnection, claimedSeconds: number): AdmittedTls {
    if (this.clock.known) {
      if (connection.trust === 'verified') return { trust: 'verified', windows: connection.windows };
      const error = connection.timeError ?? 'CERT_HAS_EXPIRED';
      const what = error === 'CERT_NOT_YET_VALID' ? 'not yet valid' : 'expired';
      const why = `certificate ${what} at the local clock, which is known to be right (${this.clock.why}): refused`;
      throw codedError(why, error);
    }
    const judged = verifyChainAt(connection.chain, connection.host, claimedSeconds, this.#ca);
    if (!judged.ok) {
      const local =
        connection.trust === 'verified'
          ? 'valid at the local clock (not known to be right) but not'
          : `not valid at the local clock (${connection.timeError ?? 'time'}) nor`;
      throw codedError(`certificate ${local} at the server's own Date: ${judged.reason}`, judged.code);
    }
    return { trust: connection.trust, windows: judged.windows };
  }
}

/** One server's https connections, each judged at the first Date that came on it. */
export class ServerTls {
  readonly #gate: TlsGate;
  readonly #admitted = new Map<TlsConnection, AdmittedTls>();

  constructor(gate: TlsGate) {
    this.#gate = gate;
  }

  /**
   * An answer with a Date came on `connection` (null: plain http): judges the connection at
   * that Date the first time; throws (gate.admit) when it does not count.
   */
  answered(connection: TlsConnection | null, claimedSeconds: number): void {
    if (connection === null || this.#admitted.has(connection)) return;
    this.#admitted.set(connection, this.#gate.admit(connection, claimedSeconds));
  }

  /** How the server's connections were trusted (null: none was https). */
  get trust(): TlsTrust | null {
    if (this.#admitted.size === 0) return null;
    return [...this.#admitted.values()].some((tls) => tls.trust === 'time-unverified') ? 'time-unverified' : 'verified';
  }

  get windows(): CertificateWindow[] {
    const windows = [...this.#admitted.values()].flatMap((tls) => tls.windows);
    return [...new Map(windows.map((window) => [JSON.stringify(window), window])).values()];
  }
}
