import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inMemoryStripeSide, startStripeApp } from '../../support/webhook-fixtures.ts';

// Every error is problem+json, also the ones no route handler throws: no route, a method no route takes.
describe('errors that no handler throws', () => {
  let app: Awaited<ReturnType<typeof startStripeApp>>;
  beforeAll(async () => {
    app = await startStripeApp(inMemoryStripeSide());
  });
  afterAll(async () => {
    await app.close();
  });

  const problem = async (res: Response) => {
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    return (await res.json()) as Record<string, unknown>;
  };

  it('GET /v1/logs (a POST route): 405 problem+json with Allow', async () => {
    const res = await fetch(`${app.url}/v1/logs`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await problem(res)).toMatchObject({
      type: 'https://billing-meter.dev/problems/method-not-allowed',
      status: 405,
      detail: 'GET is not allowed on /v1/logs; allowed: POST',
      allow: ['POST'],
    });
  });

  it('DELETE /v1/meters: 405 before any key is asked for', async () => {
    const res = await fetch(`${app.url}/v1/meters`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect((await problem(res)).allow).toEqual(['HEAD', 'GET']);
  });

  it('an unknown route: 404 problem+json naming it', async () => {
    const res = await fetch(`${app.url}/v1/nope?x=1`);
    expect(res.status).toBe(404);
    expect(await problem(res)).toMatchObject({ status: 404, detail: 'no route for GET /v1/nope' });
  });

  it('a method no router implements: 501 problem+json', async () => {
    const res = await fetch(`${app.url}/v1/logs`, { method: 'PROPFIND' });
    expect(res.status).toBe(501);
    expect(await problem(res)).toMatchObject({
      type: 'https://billing-meter.dev/problems/not-implemented',
      detail: 'the method PROPFIND is not implemented here',
    });
  });
});
