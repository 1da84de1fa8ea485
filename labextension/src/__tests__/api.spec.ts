/**
 * requestAPI: the one door to the server. A fake `fetch` stands in for the network.
 */
import { ServerConnection } from '@jupyterlab/services';

import { fetchRuns, requestAPI, toNumber } from '../api';

type FakeFetch = (input: RequestInfo, init?: RequestInit) => Promise<Response>;

function settings(fetch: FakeFetch): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    fetch: fetch as typeof window.fetch
  });
}

function reply(status: number, body: unknown): Response {
  return {
    ok: status < 400,
    status,
    statusText: status === 404 ? 'Not Found' : 'OK',
    text: async () => JSON.stringify(body),
    headers: new Headers()
  } as unknown as Response;
}

describe('requestAPI', () => {
  it('calls <base_url>/nbtrack/api/ with the query, leaving out empty values', async () => {
    const urls: string[] = [];
    const fake: FakeFetch = async input => {
      urls.push(typeof input === 'string' ? input : input.url);
      return reply(200, { runs: [], total: 0 });
    };
    const page = await requestAPI<{ total: number }>(
      'runs',
      { path: 'a b/nb.ipynb', limit: 5, where: '', text: undefined },
      {},
      settings(fake)
    );
    expect(page.total).toBe(0);
    // ServerConnection may append a cache-busting timestamp.
    expect(urls[0]).toMatch(
      /^http:\/\/localhost:8888\/lab-base\/nbtrack\/api\/runs\?path=a%20b%2Fnb\.ipynb&limit=5(&\d+)?$/
    );
  });

  it("turns an error answer into a ResponseError carrying the server's message", async () => {
    const fake: FakeFetch = async () =>
      reply(404, {
        error: { type: 'RunNotFoundError', message: "no run matches 'ffff'" }
      });
    const request = requestAPI('runs/ffff', {}, {}, settings(fake));
    await expect(request).rejects.toBeInstanceOf(
      ServerConnection.ResponseError
    );
    await expect(request).rejects.toThrow("no run matches 'ffff'");
  });

  it('turns a failed connection into a NetworkError', async () => {
    const fake: FakeFetch = async () => {
      throw new TypeError('Failed to fetch');
    };
    await expect(
      requestAPI('status', {}, {}, settings(fake))
    ).rejects.toBeInstanceOf(ServerConnection.NetworkError);
  });

  it('reads NaN and infinities sent as strings', () => {
    expect(toNumber('NaN')).toBeNaN();
    expect(toNumber('-Infinity')).toBe(-Infinity);
    expect(toNumber(0.5)).toBe(0.5);
    expect(typeof fetchRuns).toBe('function');
  });
});
