// Which servers to ask: a bare host[:port] means https://host, URLs are taken as given.
import { withCode } from '../../errors.js';

/** Well-run HTTPS sites with disciplined clocks, used when no server is given. */
export const DEFAULT_SERVERS: readonly string[] = [
  'www.google.com',
  'www.cloudflare.com',
  'www.microsoft.com',
  'www.apple.com',
  'www.amazon.com',
  'www.wikipedia.org',
  'www.debian.org',
];

/** Parses one server argument; throws a TypeError (ERR_INVALID_URL) for anything else. */
export function serverUrl(spec: string): URL {
  const text = spec.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw withCode(
      new TypeError(`Invalid server "${spec}": expected host[:port] or an http(s):// URL`),
      'ERR_INVALID_URL',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw withCode(
      new TypeError(`Invalid server "${spec}": only http:// and https:// are supported`),
      'ERR_INVALID_URL',
    );
  }
  return url;
}
