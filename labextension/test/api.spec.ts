import { ServerConnection } from '@jupyterlab/services';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { requestAPI } from '../src/api';

afterEach(() => vi.restoreAllMocks());

const settings = {
  baseUrl: 'http://localhost:8888/'
} as unknown as ServerConnection.ISettings;

describe('requestAPI', () => {
  it("says the server did not answer, not the browser's 'Failed to fetch'", async () => {
    vi.spyOn(ServerConnection, 'makeRequest').mockRejectedValue(
      new TypeError('Failed to fetch')
    );
    const error = await requestAPI('environments', {}, settings).catch(
      (e: unknown) => e as Error
    );
    expect(error).toBeInstanceOf(ServerConnection.NetworkError);
    expect((error as Error).message).toBe(
      'the Jupyter server did not answer (Failed to fetch): is it still running, and the network up?'
    );
  });
});
