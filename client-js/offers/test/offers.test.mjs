// The built offers page in real Chromium, served by the real Herald binary, fed by requests signed the
// way Apex signs them. QR codes are checked by decoding the pixels the page drew.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import jsQR from 'jsqr';
import { chromium } from 'playwright-core';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const distDir = join(packageDir, 'dist');
const heraldBin = process.env.HERALD_BIN || resolve(packageDir, '../../target/debug/herald');
const chromiumBin = '/usr/bin/chromium';

// The app of /work/shared/fixtures/apex-pusher-rest-vectors.json.
const APP = { id: '424242', key: '3c5c3f6d2a4b1e0f9a87', secret: '9f8e7d6c5b4a39281706' };
const CHANNEL = 'test_channel';
const EVENT = 'new_offer';
/** Upper bound for anything the page or Herald should do "at once". */
const WAIT_MS = 15_000;
/**
 * Upper bound for pusher-js to reconnect after Herald was down: after a refused attempt it waits out
 * a 15 s timeout before trying again, and the timeout doubles while attempts keep failing.
 */
const RECONNECT_MS = 40_000;

/** The part of a signed request Apex computes: `METHOD\nPATH\nsorted query` (spec §9.2). */
function stringToSign(method, path, params) {
  const query = Object.keys(params)
    .sort()
    .map((key) => `${key}=${params[key]}`)
    .join('&');
  return `${method}\n${path}\n${query}`;
}

function md5Hex(body) {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

function signature(secret, text) {
  return createHmac('sha256', secret).update(text, 'utf8').digest('hex');
}

/** The path and query of a signed POST, in the order Apex sends it: sorted, then auth_signature. */
function signedTarget(path, extraParams, body) {
  const params = {
    auth_key: APP.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    body_md5: md5Hex(body),
    ...extraParams,
  };
  const text = stringToSign('POST', path, params);
  return `${path}?${text.split('\n')[2]}&auth_signature=${signature(APP.secret, text)}`;
}

async function freePort() {
  const server = createServer();
  await new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', done);
  });
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** A running Herald process with its output kept for error messages. */
class Herald {
  constructor(configPath) {
    // Settings from the caller's environment would override the test's file.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD__') && name !== 'PORT'),
    );
    this.output = '';
    this.child = spawn(heraldBin, ['--config', configPath], {
      cwd: dirname(configPath),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk) => {
      this.output = (this.output + chunk).slice(-20_000);
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exitStatus = null;
    this.exited = new Promise((done) => {
      this.child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        done(this.exitStatus);
      });
    });
  }

  /** Polls GET /ready until it answers 200, within WAIT_MS. */
  async waitReady(baseUrl) {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      if (this.exitStatus) {
        throw new Error(`Herald exited (${JSON.stringify(this.exitStatus)}) before it was ready:\n${this.output}`);
      }
      try {
        const response = await fetch(`${baseUrl}/ready`);
        if (response.status === 200) {
          return;
        }
      } catch {
        // Not listening yet.
      }
      await delay(50);
    }
    throw new Error(`Herald was not ready within ${WAIT_MS} ms:\n${this.output}`);
  }

  /** SIGTERM, then the exit, within WAIT_MS. */
  async stop() {
    if (this.exitStatus) {
      return this.exitStatus;
    }
    this.child.kill('SIGTERM');
    const timeout = delay(WAIT_MS, null, { ref: false });
    const status = await Promise.race([this.exited, timeout]);
    if (!status) {
      this.child.kill('SIGKILL');
      throw new Error(`Herald did not exit within ${WAIT_MS} ms of SIGTERM:\n${this.output}`);
    }
    return status;
  }
}

describe('signing like Apex', () => {
  test('reproduces the legacy-endpoint vector of the Apex fixture', () => {
    // apex_legacy_channel_endpoint_new_offer in /work/shared/fixtures/apex-pusher-rest-vectors.json.
    const body = '{"offers":[{"id":"a0B5g00000Kx7QzEAJ","text":"OFF-000123","description":"20% off Widget Pro"}]}';
    const text = stringToSign('POST', '/apps/424242/channels/test_channel/events', {
      name: 'new_offer',
      auth_version: '1.0',
      body_md5: md5Hex(body),
      auth_timestamp: '1700000000',
      auth_key: APP.key,
    });
    assert.equal(
      text,
      'POST\n/apps/424242/channels/test_channel/events\nauth_key=3c5c3f6d2a4b1e0f9a87&auth_timestamp=1700000000' +
        '&auth_version=1.0&body_md5=62548700cae847c297dcdabfc634ad14&name=new_offer',
    );
    assert.equal(signature(APP.secret, text), '6e1bb2d1c50395b504209ccd18b2d78f77b2ba6421fb95a68574e0226fb648ce');
  });
});

describe('offers page served by Herald', () => {
  let workDir;
  let configPath;
  let baseUrl;
  let herald;
  let browser;
  let page;
  const pageErrors = [];
  const dialogs = [];

  before(async () => {
    assert.ok(
      existsSync(heraldBin),
      `Herald binary not found at ${heraldBin}: run \`cargo build --bin herald\` at the repository root, or set HERALD_BIN`,
    );
    assert.ok(existsSync(join(distDir, 'index.html')), 'dist/ is missing: run `npm run build` first');
    assert.ok(existsSync(chromiumBin), `${chromiumBin} is missing: install it with \`apt-get install -y chromium\``);

    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    workDir = await mkdtemp(join(tmpdir(), 'herald-offers-'));
    configPath = join(workDir, 'herald.toml');
    // JSON string syntax is valid TOML for these values.
    await writeFile(
      configPath,
      [
        '[server]',
        'host = "127.0.0.1"',
        `port = ${port}`,
        'shutdown_timeout = "5s"',
        '',
        `[apps.${APP.id}]`,
        `key = ${JSON.stringify(APP.key)}`,
        `secret = ${JSON.stringify(APP.secret)}`,
        '',
        '[static]',
        `dir = ${JSON.stringify(distDir)}`,
        '',
        '[static.client]',
        `channel = ${JSON.stringify(CHANNEL)}`,
        '',
      ].join('\n'),
    );
    herald = new Herald(configPath);
    await herald.waitReady(baseUrl);

    browser = await chromium.launch({
      executablePath: chromiumBin,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && message.text().includes('Content Security Policy')) {
        pageErrors.push(message.text());
      }
    });
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      dialog.dismiss().catch(() => {});
    });
  });

  after(async () => {
    if (page && process.env.OFFERS_SCREENSHOT) {
      await page.screenshot({ path: process.env.OFFERS_SCREENSHOT, fullPage: true, animations: 'disabled' });
    }
    await browser?.close();
    if (herald && !herald.exitStatus) {
      await herald.stop().catch(() => herald.child.kill('SIGKILL'));
    }
    if (workDir) {
      await rm(workDir, { recursive: true, force: true });
    }
  });

  async function post(target, body, expectedStatus) {
    const response = await fetch(baseUrl + target, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
    const answer = await response.text();
    assert.equal(response.status, expectedStatus, `POST ${target} answered ${response.status}: ${answer}`);
  }

  /** Publishes `body` as Apex does on the legacy endpoint (spec §9.9): the body is the event data. */
  async function publishLegacy(body) {
    const path = `/apps/${APP.id}/channels/${CHANNEL}/events`;
    await post(signedTarget(path, { name: EVENT }, body), body, 202);
  }

  /** Publishes `data` on POST /apps/{id}/events, with data as a JSON string (spec §9.3). */
  async function publishEvents(data) {
    const body = JSON.stringify({ name: EVENT, channels: [CHANNEL], data: JSON.stringify(data) });
    await post(signedTarget(`/apps/${APP.id}/events`, {}, body), body, 200);
  }

  async function waitForState(state, timeout = WAIT_MS) {
    await page.waitForSelector(`#connection[data-state="${state}"]`, { timeout });
  }

  async function waitForOffer(id) {
    await page.waitForSelector(`#offers > li[data-offer-id="${id}"]`, { timeout: WAIT_MS });
  }

  async function shownIds() {
    return page.$$eval('#offers > li', (cards) => cards.map((card) => card.dataset.offerId));
  }

  /** The text the offer's QR code decodes to, from the canvas pixels. */
  async function decodedCode(id) {
    const image = await page.$eval(`#offers > li[data-offer-id="${id}"] canvas.offer-code`, (canvas) => {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      // RGBA bytes as base64: far quicker to hand over than an array of numbers.
      let binary = '';
      for (let start = 0; start < data.length; start += 0x8000) {
        binary += String.fromCharCode.apply(null, data.subarray(start, start + 0x8000));
      }
      return { width: canvas.width, height: canvas.height, pixels: btoa(binary) };
    });
    const decoded = jsQR(new Uint8ClampedArray(Buffer.from(image.pixels, 'base64')), image.width, image.height);
    assert.ok(decoded, `the QR code of ${id} could not be decoded`);
    return decoded.data;
  }

  async function cardText(id, selector) {
    return page.$eval(`#offers > li[data-offer-id="${id}"] ${selector}`, (element) => element.textContent);
  }

  test('Herald serves the page settings, and the build leaves them out', async () => {
    assert.ok(!existsSync(join(distDir, 'herald-config.js')));
    const response = await fetch(`${baseUrl}/offers/herald-config.js`);
    assert.equal(response.status, 200);
    const script = await response.text();
    assert.match(script, /^window\.HERALD_CONFIG = \{.*\};\n$/);
    const settings = JSON.parse(script.slice('window.HERALD_CONFIG = '.length, -2));
    assert.equal(settings.appKey, APP.key);
    assert.equal(settings.channel, CHANNEL);
    assert.equal(settings.event, EVENT);
  });

  test('the page goes live', async () => {
    await page.goto(`${baseUrl}/offers/`);
    await waitForState('live');
    assert.equal(await page.locator('#empty').isVisible(), true);
  });

  test('an offer published like Apex on the legacy endpoint shows as a scannable QR code', async () => {
    const body = JSON.stringify({
      offers: [{ id: 'a0B5g00000Kx7QzEAJ', text: 'OFF-000123', description: '20% off Widget Pro' }],
    });
    await publishLegacy(body);
    await waitForOffer('a0B5g00000Kx7QzEAJ');
    assert.equal(await decodedCode('a0B5g00000Kx7QzEAJ'), 'OFF-000123');
    assert.equal(await cardText('a0B5g00000Kx7QzEAJ', '.offer-text'), 'OFF-000123');
    assert.equal(await cardText('a0B5g00000Kx7QzEAJ', '.offer-description'), '20% off Widget Pro');
    assert.equal(await page.locator('#empty').isVisible(), false);
  });

  test('two offers in one event show as two codes, newest first', async () => {
    await publishLegacy(
      JSON.stringify({
        offers: [
          { id: 'a0B5g00000Kx7R1EAJ', text: 'OFF-000124', description: 'Free delivery' },
          { id: 'a0B5g00000Kx7R2EAJ', text: 'OFF-000125' },
        ],
      }),
    );
    await waitForOffer('a0B5g00000Kx7R1EAJ');
    await waitForOffer('a0B5g00000Kx7R2EAJ');
    assert.deepEqual(await shownIds(), ['a0B5g00000Kx7R2EAJ', 'a0B5g00000Kx7R1EAJ', 'a0B5g00000Kx7QzEAJ']);
    assert.equal(await decodedCode('a0B5g00000Kx7R1EAJ'), 'OFF-000124');
    assert.equal(await decodedCode('a0B5g00000Kx7R2EAJ'), 'OFF-000125');
    assert.equal(await page.locator('#offers > li[data-offer-id="a0B5g00000Kx7R2EAJ"] .offer-description').count(), 0);
  });

  test('a single-offer payload on POST /events shows too', async () => {
    await publishEvents({ id: 'a0B5g00000Kx7R3EAJ', text: 'OFF-000126', description: 'Café crème – 2€ off' });
    await waitForOffer('a0B5g00000Kx7R3EAJ');
    assert.equal((await shownIds())[0], 'a0B5g00000Kx7R3EAJ');
    assert.equal(await decodedCode('a0B5g00000Kx7R3EAJ'), 'OFF-000126');
    assert.equal(await cardText('a0B5g00000Kx7R3EAJ', '.offer-description'), 'Café crème – 2€ off');
  });

  test('HTML in record fields shows as text and injects nothing', async () => {
    const text = '<img src=x onerror=alert(1)>';
    const description = '<b>bold</b><script>alert(2)</script>';
    await publishLegacy(JSON.stringify({ offers: [{ id: 'a0B5g00000Kx7R4EAJ', text, description }] }));
    await waitForOffer('a0B5g00000Kx7R4EAJ');
    assert.equal(await cardText('a0B5g00000Kx7R4EAJ', '.offer-text'), text);
    assert.equal(await cardText('a0B5g00000Kx7R4EAJ', '.offer-description'), description);
    assert.equal(await decodedCode('a0B5g00000Kx7R4EAJ'), text);
    assert.equal(await page.locator('#offers img, #offers b, #offers script').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  test('malformed payloads are ignored and the page keeps working', async () => {
    const before = (await shownIds()).length;
    for (const body of [
      'not JSON at all',
      'null',
      '[{"text":"OFF-999999"}]',
      '{"offers":"OFF-999999"}',
      '{"offers":[{"id":"no-text"},{"text":"   "},42,null,["OFF-999999"]]}',
      '{"id":"object-text","text":{"value":"OFF-999999"}}',
    ]) {
      await publishLegacy(body);
    }
    // Herald keeps a channel's events in order, so once this one shows, the others were handled.
    await publishLegacy('{"id":"a0B5g00000Kx7R5EAJ","text":"OFF-000127"}');
    await waitForOffer('a0B5g00000Kx7R5EAJ');
    assert.equal((await shownIds()).length, before + 1);
    assert.equal(await page.locator('#connection').getAttribute('data-state'), 'live');
  });

  test('a text too long for a QR code still shows, with a note instead of the code', async () => {
    const text = `OFF-${'x'.repeat(3000)}`;
    await publishEvents({ id: 'a0B5g00000Kx7R7EAJ', text });
    await waitForOffer('a0B5g00000Kx7R7EAJ');
    assert.equal(await cardText('a0B5g00000Kx7R7EAJ', '.offer-text'), text);
    assert.equal(await cardText('a0B5g00000Kx7R7EAJ', '.offer-code-missing'), 'Too long for a QR code');
    assert.equal(await page.locator('#offers > li[data-offer-id="a0B5g00000Kx7R7EAJ"] canvas').count(), 0);
  });

  test('after Herald restarts, the page reconnects and shows the next offer', async () => {
    const stopped = herald.stop();
    await waitForState('reconnecting');
    const status = await stopped;
    assert.equal(status.code, 0, `Herald exited with ${JSON.stringify(status)}:\n${herald.output}`);

    herald = new Herald(configPath);
    await herald.waitReady(baseUrl);
    await waitForState('live', RECONNECT_MS);
    await publishLegacy('{"offers":[{"id":"a0B5g00000Kx7R6EAJ","text":"OFF-000128","description":"Back online"}]}');
    await waitForOffer('a0B5g00000Kx7R6EAJ');
    assert.equal((await shownIds())[0], 'a0B5g00000Kx7R6EAJ');
    assert.equal(await decodedCode('a0B5g00000Kx7R6EAJ'), 'OFF-000128');
  });

  test('the page raised no script errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
