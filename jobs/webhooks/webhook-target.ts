/**
 * Where a webhook may point. A tenant owner chooses the URL and evalgate's
 * workers POST to it from inside the deployment's network, so by default a
 * webhook may only reach public unicast addresses: not loopback, private
 * (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254),
 * carrier-grade NAT, multicast, unspecified or reserved ranges
 * (server-side request forgery). The check runs at registration (IP literals
 * and `localhost` names) and again at every delivery on the address the
 * connection actually uses (the DNS answer, checked inside the socket's
 * lookup), so a name that later resolves elsewhere (DNS rebinding) is refused
 * too. WEBHOOK_ALLOW_PRIVATE_TARGETS=true lifts it (receivers on the same
 * network; the tests).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export class PrivateTargetError extends Error {
  override name = 'PrivateTargetError';
}

/** Whether `address` (an IPv4 or IPv6 literal) is a public unicast address. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  return ip.range() === 'unicast';
}

/** A URL's host without IPv6 brackets or a trailing dot, lower-cased. */
export const bareHost = (url: URL) => url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();

/** Refuses an IP literal that is not public (a literal is never looked up, so the lookup's check never sees it). */
export function checkAddressLiteral(host: string): void {
  if (isIP(host) && !isPublicAddress(host)) throw new PrivateTargetError(`${host} is not a public address`);
}

/** Refuses a URL whose host is, on its face, not public (an IP literal or a localhost name). Names are checked at delivery. */
export function checkWebhookUrl(url: string): void {
  const host = bareHost(new URL(url));
  if (host === 'localhost' || host.endsWith('.localhost')) throw new PrivateTargetError(`${host} is a local name`);
  checkAddressLiteral(host);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for http.request that fails the connection when the name resolves to a non-public address. */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => !isPublicAddress(a.address));
    if (bad) return callback(new PrivateTargetError(`${hostname} resolves to ${bad.address}, not a public address`), []);
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}
