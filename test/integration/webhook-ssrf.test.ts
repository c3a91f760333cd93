/**
 * SSRF: every IPv6 form that embeds an IPv4 address (compatible, mapped,
 * translated, NAT64, 6to4, Teredo) is judged by the IPv4 address it reaches,
 * and names with extra trailing dots by the name they reach; at registration
 * (the API) and at delivery (postWebhook against a real local receiver, with
 * names answered by a real local DNS server over UDP).
 */
import dgram from 'node:dgram';
import { promises as dns, type LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postWebhook } from '../../domain/webhooks/webhook-http.ts';
import { isPublicAddress, PrivateTargetError, type Resolve } from '../../domain/webhooks/webhook-target.ts';
import { makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';

/** Teredo (2001:0:<server>:<flags>:<port>:<client, inverted>) with the given client IPv4. */
const teredo = (client: [number, number, number, number]) => {
  const inv = client.map((o) => o ^ 0xff);
  const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
  return `2001:0:4136:e378:8000:63bf:${hex(inv[0] as number, inv[1] as number)}:${hex(inv[2] as number, inv[3] as number)}`;
};

/** Each form reaching a loopback, private or metadata IPv4 address. */
const PRIVATE_V6 = [
  '::127.0.0.1', // IPv4-compatible, dotted
  '::7f00:1', // IPv4-compatible, hex
  '::a9fe:a9fe', // compatible 169.254.169.254 (cloud metadata)
  '::ffff:127.0.0.1', // mapped, dotted
  '::ffff:7f00:1', // mapped, hex
  '::ffff:a00:1', // mapped 10.0.0.1
  '::ffff:0:7f00:1', // IPv4-translated (RFC 6145)
  '64:ff9b::7f00:1', // NAT64 well-known prefix
  '64:ff9b::a9fe:a9fe',
  '64:ff9b::c0a8:1', // NAT64 192.168.0.1
  '64:ff9b:1::808:808', // local-use NAT64 (RFC 8215): refused whatever it embeds
  '2002:7f00:1::1', // 6to4 of 127.0.0.1
  '2002:a9fe:a9fe::', // 6to4 of 169.254.169.254
  teredo([127, 0, 0, 1]), // Teredo to a loopback client
  teredo([10, 1, 2, 3]),
  '::', // compatible 0.0.0.0
  '::1',
];
/** The same forms reaching public IPv4 addresses: allowed. */
const PUBLIC_V6 = ['::ffff:8.8.8.8', '::808:808', '64:ff9b::808:808', '2002:808:808::1', teredo([8, 8, 8, 8]), '2606:4700::1111'];

describe('isPublicAddress', () => {
  it('judges each IPv6 form by the IPv4 address it embeds', () => {
    for (const a of PRIVATE_V6) expect(isPublicAddress(a), a).toBe(false);
    for (const a of PUBLIC_V6) expect(isPublicAddress(a), a).toBe(true);
    // Teredo's server part counts too: a private relay is refused even with a public client
    expect(isPublicAddress('2001:0:a00:1:8000:63bf:f7f7:f7f7')).toBe(false);
    for (const a of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0']) expect(isPublicAddress(a), a).toBe(false);
    expect(isPublicAddress('8.8.8.8')).toBe(true);
  });
});

describe('registration', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack();
    t = await makeTenant(s.container, 'ssrf');
  });
  afterAll(async () => s?.close());

  const register = (url: string) => api<{ error?: string }>(s.baseUrl, 'POST', '/v1/webhooks', t.keys.owner, { url });

  it('refuses every embedding form that reaches a private address, and trailing-dot local names, with a 400 naming the field', async () => {
    const urls = [
      ...PRIVATE_V6.map((a) => `http://[${a}]:8080/x`),
      'http://localhost./x',
      'http://localhost../x',
      'http://LOCALHOST.../x',
      'http://api.localhost../x',
      'http://127.0.0.1./x',
      'http://127.0.0.1../x',
      'http://10.0.0.1.../x',
      'http://hooks..example.com/x',
    ];
    for (const url of urls) {
      const r = await register(url);
      expect(r.status, url).toBe(400);
      expect(Object.keys(r.body), url).toEqual(['error']);
      expect(r.body.error, url).toMatch(/^invalid input: url: .*public addresses$/);
    }
  });

  it('accepts the same forms when they reach public addresses', async () => {
    for (const a of PUBLIC_V6) {
      const r = await register(`https://[${a}]/x`);
      expect(r.status, a).toBe(201);
    }
    expect((await register('https://hooks.example.com./x')).status).toBe(201);
  });
});

/** A real DNS server on UDP 127.0.0.1 answering A/AAAA from a table (a stand-in for the attacker's name server). */
async function startDnsServer(table: Record<string, { A?: string[]; AAAA?: string[] }>) {
  const socket = dgram.createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const query = packet.decode(msg);
    const q = query.questions?.[0];
    if (!q) return;
    asked.push(q.name);
    const entry = table[q.name.toLowerCase()];
    const type = q.type === 'A' || q.type === 'AAAA' ? q.type : undefined;
    const answers = type && entry?.[type] ? entry[type].map((data) => ({ type, name: q.name, ttl: 1, class: 'IN' as const, data })) : [];
    const reply = packet.encode({
      id: query.id,
      type: 'response',
      flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | (entry ? 0 : 3), // rcode 3: NXDOMAIN
      questions: query.questions,
      answers,
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = (socket.address() as AddressInfo).port;
  const resolver = new dns.Resolver({ timeout: 1_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const ask = async (fn: () => Promise<string[]>) => fn().catch((err: NodeJS.ErrnoException) => (err.code === 'ENODATA' || err.code === 'ENOTFOUND' ? [] : Promise.reject(err)));
  const resolve: Resolve = async (hostname) => {
    const found: LookupAddress[] = [
      ...(await ask(() => resolver.resolve4(hostname))).map((address) => ({ address, family: 4 })),
      ...(await ask(() => resolver.resolve6(hostname))).map((address) => ({ address, family: 6 })),
    ];
    if (found.length === 0) throw Object.assign(new Error(`${hostname} not found`), { code: 'ENOTFOUND' });
    return found;
  };
  return { resolve, asked, close: () => new Promise<void>((r) => socket.close(() => r())) };
}

describe('delivery', () => {
  let receiver: Receiver;
  let port: string;
  let dnsServer: Awaited<ReturnType<typeof startDnsServer>>;
  beforeAll(async () => {
    receiver = await startReceiver();
    port = new URL(receiver.url).port;
    const table: Record<string, { A?: string[]; AAAA?: string[] }> = {
      'v4.rebind.test': { A: ['127.0.0.1'] },
      'public.rebind.test': { AAAA: ['64:ff9b::808:808'] },
    };
    PRIVATE_V6.forEach((a, i) => {
      table[`v6-${i}.rebind.test`] = { AAAA: [a] };
    });
    // One bad answer among good ones is enough to refuse.
    table['mixed.rebind.test'] = { A: ['8.8.8.8'], AAAA: ['::ffff:a9fe:a9fe'] };
    dnsServer = await startDnsServer(table);
  });
  afterAll(async () => {
    await receiver?.close();
    await dnsServer?.close();
  });

  const post = (url: string, allowPrivate = false) =>
    postWebhook(url, { 'content-type': 'application/json' }, '{}', { timeoutMs: 1_000, allowPrivate, resolve: dnsServer.resolve });

  it('refuses IPv6 literals that embed a private IPv4 address before connecting; the mapped one does reach loopback when allowed', async () => {
    const before = receiver.requests.length;
    for (const a of PRIVATE_V6) await expect(post(`http://[${a}]:${port}/literal`), a).rejects.toBeInstanceOf(PrivateTargetError);
    for (const h of ['127.0.0.1.', '127.0.0.1..']) await expect(post(`http://${h}:${port}/literal`), h).rejects.toBeInstanceOf(PrivateTargetError);
    expect(receiver.requests.length).toBe(before);
    // Why it matters: ::ffff:127.0.0.1 is the receiver on 127.0.0.1.
    expect((await post(`http://[::ffff:127.0.0.1]:${port}/literal`, true)).status).toBe(200);
    expect(receiver.at('/literal')).toHaveLength(1);
  });

  it('refuses names whose DNS answer embeds a private IPv4 address, checked inside the socket\'s lookup', async () => {
    const before = receiver.requests.length;
    for (let i = 0; i < PRIVATE_V6.length; i++) {
      await expect(post(`http://v6-${i}.rebind.test:${port}/named`), PRIVATE_V6[i]).rejects.toThrow(/rebind\.test resolves to .*, not a public address/);
    }
    await expect(post(`http://v4.rebind.test:${port}/named`)).rejects.toBeInstanceOf(PrivateTargetError);
    await expect(post(`http://mixed.rebind.test:${port}/named`)).rejects.toBeInstanceOf(PrivateTargetError);
    // Extra trailing dots: the name looked up (and judged) is the name without them.
    await expect(post(`http://v4.rebind.test..:${port}/named`)).rejects.toThrow(/^v4\.rebind\.test resolves to 127\.0\.0\.1/);
    expect(dnsServer.asked).not.toContain('v4.rebind.test..');
    expect(receiver.requests.length).toBe(before);
    // A public answer passes the check (and then fails to connect: nothing routes there from here).
    const publicAnswer = await post(`http://public.rebind.test:${port}/named`).catch((err: unknown) => err);
    expect(publicAnswer).not.toBeInstanceOf(PrivateTargetError);
  });

  it('judges localhost with trailing dots by what the system resolver answers for it', async () => {
    const system = (url: string, allowPrivate = false) => postWebhook(url, { 'content-type': 'application/json' }, '{}', { timeoutMs: 1_000, allowPrivate });
    const before = receiver.requests.length;
    for (const h of ['localhost.', 'localhost..', 'LOCALHOST...']) {
      await expect(system(`http://${h}:${port}/dots`), h).rejects.toThrow(/^localhost resolves to .*, not a public address/);
    }
    expect(receiver.requests.length).toBe(before);
    // the name they were judged as is the receiver indeed
    expect((await system(`http://localhost:${port}/dots`, true)).status).toBe(200);
  });
});
