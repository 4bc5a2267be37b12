// probe() against a dispatcher that answers without ever starting the request: no send
// time means no upper bound, so the probe must be rejected, not bounded by its receive time.
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { formatHttpDate } from '../../../src/sources/http/date.js';
import { probe } from '../../../src/sources/http/probe.js';

/** Calls the response hooks only: onRequestStart never runs. */
function answeringDispatcher(withRequestStart: boolean): Dispatcher {
  const dispatcher = {
    dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const controller = {} as Dispatcher.DispatchController;
      if (withRequestStart) handler.onRequestStart?.(controller, {});
      handler.onResponseStart?.(controller, 200, { date: formatHttpDate(systemClock.realtime().sec) }, 'OK');
      handler.onResponseEnd?.(controller, {});
      return true;
    },
  };
  return dispatcher as unknown as Dispatcher;
}

describe('probe', () => {
  const url = new URL('http://127.0.0.1:1/');

  it('rejects an answer whose send time was never taken', async () => {
    await expect(probe(answeringDispatcher(false), url, systemClock)).rejects.toMatchObject({ code: 'ERR_HTTP_NO_SEND_TIME', message: expect.stringMatching(/send time/) });
  });

  it('takes the same answer once the request started', async () => {
    const response = await probe(answeringDispatcher(true), url, systemClock);
    expect(response.statusCode).toBe(200);
    expect(response.receiveTime.sec * 1e9 + response.receiveTime.nsec).toBeGreaterThanOrEqual(response.sendTime.sec * 1e9 + response.sendTime.nsec);
  });
});
