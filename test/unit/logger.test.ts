/** The log scrubber on finished JSON lines: credentials go, ordinary text stays. */
import { describe, expect, it } from 'vitest';
import { generateApiKey } from '../../domain/tenants/api-keys.ts';
import { credentialScrubber } from '../../server/logger.ts';

const line = (o: unknown) => JSON.stringify(o);

describe('credentialScrubber', () => {
  const scrub = credentialScrubber(['pk-"quoted"-secret', 'short']);

  it('removes credentials by shape wherever they are', () => {
    const key = generateApiKey();
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2lnbmF0dXJlLXBhcnQ';
    const out = scrub(
      line({
        msg: `unknown key ${key}`,
        url: `/v1/eval-runs/x?api_key=${key}&x=1`,
        header: `Bearer ${jwt}`,
        basic: 'Basic b3BzOnBhc3N3b3JkLTEyMw==',
        nested: { err: `Error: provider said no to sk-proj-abcdefghijklmnopqrstuvwxyz0123` },
        bare: jwt,
      }),
    );
    expect(JSON.parse(out)).toEqual({
      msg: 'unknown key tl_[redacted]',
      url: '/v1/eval-runs/x?api_key=tl_[redacted]&x=1',
      header: 'Bearer [redacted]',
      basic: 'Basic [redacted]',
      nested: { err: 'Error: provider said no to [redacted]' },
      bare: '[redacted]',
    });
  });

  it('removes configured secrets as the JSON line spells them, and keeps the line valid JSON', () => {
    const out = scrub(line({ msg: 'provider key pk-"quoted"-secret leaked' }));
    expect(JSON.parse(out)).toEqual({ msg: 'provider key [redacted] leaked' });
  });

  it('leaves ordinary text alone', () => {
    const text = {
      msg: 'missing Authorization header: send "Authorization: Bearer tl_…"',
      hint: 'Basic auth is required for the board; a short value stays',
      runId: '01a214f0-1efd-772c-95ce-c4e3d0577be4',
      jobId: '01a214f0-1efd-772c-95ce-c4e3d0577be4-3',
      sha: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    };
    expect(scrub(line(text))).toBe(line(text));
  });
});
