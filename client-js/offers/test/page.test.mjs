// The page's pure parts: reading offers out of event data, settings, and the connection state.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { offersFrom } from '../src/payload.js';
import { readSettings } from '../src/settings.js';
import { pageState } from '../src/status.js';

describe('offersFrom', () => {
  const check = (data, expected) => assert.deepEqual(offersFrom(data), expected);

  test('reads the Salesforce sample shape, in payload order', () => {
    check({ offers: [{ text: 'OFF-1' }, { id: 'a0B', text: 'OFF-2', description: 'Half price' }] }, [
      { id: '', text: 'OFF-1', description: '' },
      { id: 'a0B', text: 'OFF-2', description: 'Half price' },
    ]);
  });

  test('reads a single offer, ignoring extra fields', () => {
    check({ id: 'a0B', text: 'OFF-3', description: 'd', object: 'Offer__c', fields: {} }, [
      { id: 'a0B', text: 'OFF-3', description: 'd' },
    ]);
  });

  test('keeps the text exactly as sent', () => {
    check({ text: '  OFF-4 <b>\n' }, [{ id: '', text: '  OFF-4 <b>\n', description: '' }]);
  });

  test('turns numbers into digits', () => {
    check({ id: 7, text: 123 }, [{ id: '7', text: '123', description: '' }]);
  });

  test('skips offers without usable text but keeps the rest', () => {
    check({ offers: [{ id: 'x' }, { text: '  ' }, { text: { nested: 1 } }, 42, null, ['OFF'], { text: 'OFF-5' }] }, [
      { id: '', text: 'OFF-5', description: '' },
    ]);
  });

  test('ignores anything that is not an offer payload', () => {
    for (const data of [null, undefined, 'OFF-6', 42, true, [{ text: 'OFF-6' }], {}, { offers: 'OFF-6' }, { offers: null }]) {
      check(data, []);
    }
  });
});

describe('readSettings', () => {
  const page = { hostname: 'offers.example.org', port: '', protocol: 'https:' };
  const served = {
    appKey: 'key-1',
    wsHost: '',
    wsPort: 0,
    forceTLS: false,
    wsPath: '',
    channel: 'offers',
    event: 'new_offer',
  };
  const read = (config, query = '', location = page) => readSettings(config, new URLSearchParams(query), location);

  test('empty host and port 0 mean the page’s own', () => {
    const settings = read(served);
    assert.equal(settings.appKey, 'key-1');
    assert.equal(settings.channel, 'offers');
    assert.equal(settings.event, 'new_offer');
    assert.deepEqual(settings.pusherOptions, {
      cluster: 'herald',
      wsHost: 'offers.example.org',
      wsPort: 443,
      wssPort: 443,
      forceTLS: false,
      enabledTransports: ['ws', 'wss'],
    });
    assert.equal(read(served, '', { hostname: 'h', port: '', protocol: 'http:' }).pusherOptions.wsPort, 80);
    assert.equal(read(served, '', { hostname: 'h', port: '6001', protocol: 'http:' }).pusherOptions.wsPort, 6001);
  });

  test('served values are used as given', () => {
    const settings = read({ ...served, wsHost: 'ws.example.org', wsPort: 8443, forceTLS: true, wsPath: '/pusher' });
    assert.equal(settings.pusherOptions.wsHost, 'ws.example.org');
    assert.equal(settings.pusherOptions.wsPort, 8443);
    assert.equal(settings.pusherOptions.wssPort, 8443);
    assert.equal(settings.pusherOptions.forceTLS, true);
    assert.equal(settings.pusherOptions.wsPath, '/pusher');
  });

  test('the query overrides the served values', () => {
    const settings = read(served, '?channel=test_channel&event=promo&key=key-2&host=127.0.0.1&port=7000');
    assert.equal(settings.appKey, 'key-2');
    assert.equal(settings.channel, 'test_channel');
    assert.equal(settings.event, 'promo');
    assert.equal(settings.pusherOptions.wsHost, '127.0.0.1');
    assert.equal(settings.pusherOptions.wsPort, 7000);
  });

  test('a bad port in the query is ignored', () => {
    for (const port of ['0', '70000', 'abc', '80a', '']) {
      assert.equal(read({ ...served, wsPort: 6001 }, `?port=${port}`).pusherOptions.wsPort, 6001, port);
    }
  });

  test('channel and event default when nothing names them', () => {
    const settings = read({ appKey: 'key-1' });
    assert.equal(settings.channel, 'offers');
    assert.equal(settings.event, 'new_offer');
  });

  test('without an app key the page reports a problem', () => {
    assert.match(read(undefined).problem, /herald-config\.js/);
    assert.match(read({ ...served, appKey: '' }).problem, /no app key/);
    assert.equal(read(undefined, '?key=key-3').appKey, 'key-3');
  });
});

describe('pageState', () => {
  const check = (connectionState, subscribed, wasLive, expected) =>
    assert.equal(pageState(connectionState, subscribed, wasLive), expected, `${connectionState} ${subscribed} ${wasLive}`);

  test('maps pusher-js states', () => {
    check('initialized', false, false, 'connecting');
    check('connecting', false, false, 'connecting');
    check('unavailable', false, false, 'connecting');
    check('connected', false, false, 'connecting');
    check('connected', true, false, 'live');
    check('connected', true, true, 'live');
    check('connecting', false, true, 'reconnecting');
    check('unavailable', false, true, 'reconnecting');
    check('connected', false, true, 'reconnecting');
    check('failed', false, false, 'failed');
    check('disconnected', false, true, 'failed');
  });
});
