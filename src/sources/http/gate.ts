// The one rule on how an https server's answers count, for every caller (measure(), and so
// the feeder and measureOffset(); ServerClock's sweeps). A connection Node verified at the
// local clock counts as it is. A connection whose chain failed there only for time
// (tls.ts) counts once OpenSSL verifies its chain at the time the server itself claims,
// with the trust set of the strict connection: the first Date on it is that time.
import { codedError } from '../../errors.js';
import { verifyChainAt, type CertificateWindow, type TlsConnection, type TlsTrust } from './tls.js';

/** How a connection counts once judged. */
export interface AdmittedTls {
  trust: TlsTrust;
  /** The certificates whose windows the published time must lie in (validity.ts). */
  windows: CertificateWindow[];
}

export class TlsGate {
  readonly #ca: string | Buffer | undefined;

  /** `ca`: the extra trusted CAs the connections were made with (--ca). */
  constructor(ca?: string | Buffer) {
    this.#ca = ca;
  }

  /**
   * How `connection` counts, given the first Date its server sent on it (seconds since the
   * epoch); throws an Error with OpenSSL's code and the reason when it does not.
   */
  admit(connection: TlsConnection, claimedSeconds: number): AdmittedTls {
    if (connection.trust === 'verified') return { trust: 'verified', windows: connection.windows };
    const judged = verifyChainAt(connection.chain, connection.host, claimedSeconds, this.#ca);
    if (!judged.ok) {
      throw codedError(`certificate not valid at the local clock (${connection.timeError ?? 'time'}) nor at the server's own Date: ${judged.reason}`, judged.code);
    }
    return { trust: 'time-unverified', windows: judged.windows };
  }
}

/**
 * One server's https connections as they come (onTls) and as they are judged: each new one
 * waits for the first Date after it.
 */
export class ServerTls {
  readonly #gate: TlsGate;
  readonly #pending: TlsConnection[] = [];
  readonly admitted: AdmittedTls[] = [];

  constructor(gate: TlsGate) {
    this.#gate = gate;
  }

  /** onTls of the server's connections. */
  readonly connected = (connection: TlsConnection): void => {
    this.#pending.push(connection);
  };

  /** Judges the connections made since the last Date at this one; throws (gate.admit) when one does not count. */
  dated(claimedSeconds: number): void {
    while (this.#pending.length > 0) this.admitted.push(this.#gate.admit(this.#pending.shift() as TlsConnection, claimedSeconds));
  }

  /** How the server's connections were trusted (null: none was https). */
  get trust(): TlsTrust | null {
    if (this.admitted.length === 0) return null;
    return this.admitted.some((tls) => tls.trust === 'time-unverified') ? 'time-unverified' : 'verified';
  }

  get windows(): CertificateWindow[] {
    return [...new Map(this.admitted.flatMap((tls) => tls.windows).map((window) => [JSON.stringify(window), window])).values()];
  }
}
