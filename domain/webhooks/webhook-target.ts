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
import { promises as dns, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export class PrivateTargetError extends Error {
  override name = 'PrivateTargetError';
}

const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);

/**
 * The IPv4 addresses an IPv6 address stands for, when it embeds any: such a
 * packet ends up at the IPv4 address (the kernel, a NAT64 gateway, a 6to4 or
 * Teredo relay translates it), so that address is what must be public.
 * `null` when the address embeds none; an empty list when it must be refused
 * whatever it embeds.
 */
export function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4[] | null {
  const [p0, p1, p2, p3, p4, p5, p6, p7] = ip.parts as [number, number, number, number, number, number, number, number];
  const zeros = (...ps: number[]) => ps.every((x) => x === 0);
  // ::a.b.c.d / ::7f00:1 (IPv4-compatible, :: and ::1 included) and ::ffff:a.b.c.d (IPv4-mapped)
  if (zeros(p0, p1, p2, p3, p4) && (p5 === 0 || p5 === 0xffff)) return [v4(p6, p7)];
  // ::ffff:0:a.b.c.d (IPv4-translated, RFC 6145)
  if (zeros(p0, p1, p2, p3, p5) && p4 === 0xffff) return [v4(p6, p7)];
  if (p0 === 0x64 && p1 === 0xff9b) {
    // 64:ff9b::/96, the well-known NAT64 prefix (RFC 6052)
    if (zeros(p2, p3, p4, p5)) return [v4(p6, p7)];
    // 64:ff9b:1::/48 is for NAT64 inside one network (RFC 8215), with a prefix length we cannot know
    if (p2 === 1) return [];
  }
  // 2002::/16, 6to4 (RFC 3056): the relay's IPv4 is in bits 16–47
  if (p0 === 0x2002) return [v4(p1, p2)];
  // 2001::/32, Teredo (RFC 4380): the server in bits 32–63, the client (inverted) in bits 96–127
  if (p0 === 0x2001 && p1 === 0) return [v4(p2, p3), v4(p6 ^ 0xffff, p7 ^ 0xffff)];
  return null;
}

/**
 * Whether `address` (an IPv4 or IPv6 literal) is a public unicast address;
 * an IPv6 address that embeds IPv4 is judged by what it embeds.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv4') return ip.range() === 'unicast';
  const embedded = embeddedIPv4(ip as ipaddr.IPv6);
  if (embedded) return embedded.length > 0 && embedded.every((a) => a.range() === 'unicast');
  return ip.range() === 'unicast';
}

/**
 * A URL's host as it is judged: without IPv6 brackets, lower-cased, without
 * trailing dots (`localhost.` and `localhost..` reach localhost; `127.0.0.1..`
 * is 127.0.0.1 to a resolver).
 */
export const bareHost = (url: URL) => url.hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '').toLowerCase();

/** Refuses an IP literal that is not public (a literal is never looked up, so the lookup's check never sees it). */
export function checkAddressLiteral(host: string): void {
  if (isIP(host) && !isPublicAddress(host)) throw new PrivateTargetError(`${host} is not a public address`);
}

/** Refuses a malformed host or a non-public IP literal (as bareHost gives them); delivery judges every other name by its DNS answer. */
export function checkHostShape(host: string): void {
  if (host === '' || (!isIP(host) && host.split('.').some((label) => label === ''))) throw new PrivateTargetError(`"${host}" is not a valid host name`);
  checkAddressLiteral(host);
}

/** Refuses a host that is, on its face, not public: checkHostShape, and localhost names (registration has no DNS answer to judge). */
export function checkHost(host: string): void {
  if (host === 'localhost' || host.endsWith('.localhost')) throw new PrivateTargetError(`${host} is a local name`);
  checkHostShape(host);
}

/** Refuses a URL whose host is, on its face, not public (an IP literal or a localhost name). Names are checked at delivery. */
export function checkWebhookUrl(url: string): void {
  checkHost(bareHost(new URL(url)));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** How a name becomes addresses: the system's resolver (getaddrinfo, /etc/hosts) unless told otherwise. */
export type Resolve = (hostname: string, options: LookupOptions) => Promise<LookupAddress[]>;
const systemResolve: Resolve = (hostname, options) => dns.lookup(hostname, { ...options, all: true });

/**
 * A `lookup` for http.request that fails the connection when the name
 * resolves to any non-public address: the address judged is the one the
 * socket then connects to, so a name that changes its answer after
 * registration (DNS rebinding) is refused too.
 */
export function publicOnlyLookup(resolve: Resolve = systemResolve): LookupFunction {
  return (hostname, options, callback) => {
    // The name judged is the name looked up: no trailing dots (the host was judged without them).
    const name = hostname.replace(/\.+$/, '') || hostname;
    resolve(name, options).then(
      (addresses) => {
        const bad = addresses.find((a) => !isPublicAddress(a.address));
        if (bad) return callback(new PrivateTargetError(`${name} resolves to ${bad.address}, not a public address`), []);
        if (options.all) return callback(null, addresses);
        const first = addresses[0];
        if (!first) return callback(Object.assign(new Error(`${name} has no address`), { code: 'ENOTFOUND' }), []);
        callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, []),
    );
  };
}
