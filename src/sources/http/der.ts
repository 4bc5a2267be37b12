// The few fields of an X.509 certificate (RFC 5280 4.1) that Node's X509Certificate does not
// expose and a chain check needs: validity as instants, the signature algorithm, and the
// extensions with their criticality (basic constraints with the path length, key usage
// bits, extended key usage). A strict reader: anything malformed throws.
import { codedError } from '../../errors.js';

interface Tlv {
  tag: number;
  /** Where the contents start and end. */
  start: number;
  end: number;
}

const malformed = (what: string): Error => codedError(`malformed certificate: ${what}`, 'ERR_TLS_CERT_MALFORMED');

function readTlv(der: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw malformed('truncated header');
  const tag = der[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag number');
  let length = der[offset + 1] as number;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > limit) throw malformed('length');
    length = 0;
    for (let index = 0; index < bytes; index += 1) length = length * 256 + (der[start + index] as number);
    start += bytes;
  }
  const end = start + length;
  if (end > limit) throw malformed('length beyond its container');
  return { tag, start, end };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const found: Tlv[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const child = readTlv(der, offset, parent.end);
    found.push(child);
    offset = child.end;
  }
  return found;
}

const SEQUENCE = 0x30;
const OID = 0x06;
const BOOLEAN = 0x01;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

function expect(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv?.tag !== tag) throw malformed(what);
  return tlv;
}

function oid(der: Buffer, tlv: Tlv): string {
  const bytes = der.subarray(tlv.start, tlv.end);
  if (bytes.length === 0) throw malformed('empty OID');
  const first = bytes[0] as number;
  const arcs = [first < 80 ? Math.floor(first / 40) : 2, first < 80 ? first % 40 : first - 80];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

/** UTCTime (two-digit year: 50..99 are 19xx) or GeneralizedTime, seconds since the epoch. */
function time(der: Buffer, tlv: Tlv): number {
  const text = der.toString('latin1', tlv.start, tlv.end);
  const match = tlv.tag === UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : tlv.tag === GENERALIZED_TIME ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!match) throw malformed(`time ${JSON.stringify(text)}`);
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const fullYear = tlv.tag === UTC_TIME ? (year >= 50 ? 1900 + year : 2000 + year) : year;
  return Date.UTC(fullYear, month - 1, day, hour, minute, second) / 1000;
}

export interface Extension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

export interface CertificateFields {
  /** Validity (seconds since the epoch, both ends included). */
  notBefore: number;
  notAfter: number;
  signatureAlgorithm: string;
  extensions: Extension[];
}

/** Reads a DER certificate's validity, signature algorithm and extensions. */
export function certificateFields(der: Buffer): CertificateFields {
  const certificate = expect(readTlv(der, 0, der.length), SEQUENCE, 'certificate');
  const [tbs, algorithm] = children(der, certificate);
  const tbsFields = children(der, expect(tbs, SEQUENCE, 'tbsCertificate'));
  // [0] version is optional (v1): the validity is the fourth field after it.
  const fields = tbsFields[0]?.tag === 0xa0 ? tbsFields.slice(1) : tbsFields;
  const [notBefore, notAfter] = children(der, expect(fields[3], SEQUENCE, 'validity'));
  const extensions: Extension[] = [];
  const extensionsField = fields.slice(6).find((field) => field.tag === 0xa3);
  if (extensionsField) {
    const [list] = children(der, extensionsField);
    for (const extension of children(der, expect(list, SEQUENCE, 'extensions'))) {
      const parts = children(der, expect(extension, SEQUENCE, 'extension'));
      const id = oid(der, expect(parts[0], OID, 'extension id'));
      const critical = parts[1]?.tag === BOOLEAN ? der[parts[1].start] !== 0 : false;
      const value = expect(parts[parts[1]?.tag === BOOLEAN ? 2 : 1], OCTET_STRING, 'extension value');
      extensions.push({ oid: id, critical, value: der.subarray(value.start, value.end) });
    }
  }
  const [algorithmId] = children(der, expect(algorithm, SEQUENCE, 'signatureAlgorithm'));
  return {
    notBefore: time(der, notBefore ?? { tag: 0, start: 0, end: 0 }),
    notAfter: time(der, notAfter ?? { tag: 0, start: 0, end: 0 }),
    signatureAlgorithm: oid(der, expect(algorithmId, OID, 'signature algorithm')),
    extensions,
  };
}

export interface BasicConstraints {
  ca: boolean;
  pathLength: number | undefined;
}

export function basicConstraints(value: Buffer): BasicConstraints {
  const sequence = expect(readTlv(value, 0, value.length), SEQUENCE, 'basicConstraints');
  let ca = false;
  let pathLength: number | undefined;
  for (const part of children(value, sequence)) {
    if (part.tag === BOOLEAN) ca = value[part.start] !== 0;
    else if (part.tag === INTEGER) {
      if (part.end - part.start > 4) throw malformed('path length');
      pathLength = value.readUIntBE(part.start, part.end - part.start);
    } else throw malformed('basicConstraints field');
  }
  return { ca, pathLength };
}

/** Key usage bits by name (RFC 5280 4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyAgreement: 4, keyCertSign: 5 } as const;

/** The key usage bit string as a set of bit numbers. */
export function keyUsage(value: Buffer): Set<number> {
  const bits = expect(readTlv(value, 0, value.length), BIT_STRING, 'keyUsage');
  const set = new Set<number>();
  for (let index = bits.start + 1; index < bits.end; index += 1) {
    const byte = value[index] as number;
    for (let bit = 0; bit < 8; bit += 1) if (byte & (0x80 >> bit)) set.add((index - bits.start - 1) * 8 + bit);
  }
  return set;
}

/** The extended key usage purposes (OIDs). */
export function extendedKeyUsage(value: Buffer): string[] {
  const sequence = expect(readTlv(value, 0, value.length), SEQUENCE, 'extKeyUsage');
  return children(value, sequence).map((part) => oid(value, expect(part, OID, 'key purpose')));
}
