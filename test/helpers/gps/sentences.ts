// NMEA sentences for a given second, as a receiver would send them (tests, e2e writer, bench).
import { withChecksum } from '../../../src/sources/gps/nmea.js';

export interface SentenceOptions {
  /** RMC status A / GGA quality 1 / GLL A (default true). */
  valid?: boolean;
  /** Fraction digits after the seconds, with the dot (default '.00'). */
  fraction?: string;
  talker?: string;
  /** Replace the seconds field, e.g. '60' for a leap second. */
  second?: string;
}

function parts(
  unixSeconds: number,
  options: SentenceOptions,
): { hhmmss: string; ddmmyy: string; dd: string; mm: string; yyyy: string } {
  const iso = new Date(unixSeconds * 1000).toISOString();
  const yyyy = iso.slice(0, 4);
  const mm = iso.slice(5, 7);
  const dd = iso.slice(8, 10);
  const seconds = options.second ?? iso.slice(17, 19);
  const hhmmss = `${iso.slice(11, 13)}${iso.slice(14, 16)}${seconds}${options.fraction ?? '.00'}`;
  return { hhmmss, ddmmyy: `${dd}${mm}${yyyy.slice(2)}`, dd, mm, yyyy };
}

export function rmc(unixSeconds: number, options: SentenceOptions = {}): string {
  const { hhmmss, ddmmyy } = parts(unixSeconds, options);
  const status = options.valid === false ? 'V' : 'A';
  const mode = options.valid === false ? 'N' : 'A';
  return withChecksum(
    `${options.talker ?? 'GP'}RMC,${hhmmss},${status},4002.10513,N,07531.20562,W,0.016,,${ddmmyy},,,${mode}`,
  );
}

export function gga(unixSeconds: number, options: SentenceOptions = {}): string {
  const { hhmmss } = parts(unixSeconds, options);
  const quality = options.valid === false ? 0 : 1;
  return withChecksum(
    `${options.talker ?? 'GP'}GGA,${hhmmss},4002.10513,N,07531.20562,W,${quality},07,1.72,183.8,M,-34.4,M,,`,
  );
}

export function gll(unixSeconds: number, options: SentenceOptions = {}): string {
  const { hhmmss } = parts(unixSeconds, options);
  const status = options.valid === false ? 'V,N' : 'A,A';
  return withChecksum(`${options.talker ?? 'GP'}GLL,4002.10513,N,07531.20562,W,${hhmmss},${status}`);
}

export function zda(unixSeconds: number, options: SentenceOptions = {}): string {
  const { hhmmss, dd, mm, yyyy } = parts(unixSeconds, options);
  return withChecksum(`${options.talker ?? 'GP'}ZDA,${hhmmss},${dd},${mm},${yyyy},,`);
}

export const GSV = withChecksum('GPGSV,3,3,11,24,05,327,,28,84,072,33,32,23,078,26');

/** A u-blox-like burst: RMC first, then GGA, GSV, GLL. */
export function burst(unixSeconds: number, options: SentenceOptions = {}): string[] {
  return [rmc(unixSeconds, options), gga(unixSeconds, options), GSV, gll(unixSeconds, options)];
}
