// The README's quick start, followed to the letter: Herald with no configuration (the development app),
// the README's index.html opened in real Chromium, and the README's trigger.js run with Node.
// The code is read from README.md itself, so the README cannot drift from what works.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';

import { freePort, heraldBinary } from '../lib/herald.mjs';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const chromiumBinary = '/usr/bin/chromium';
const WAIT_MS = 20_000;

/** The fenced code block of `language` that follows the line containing `marker`. */
function codeBlockAfter(readme, marker, language) {
  const start = readme.indexOf(marker);
  assert.ok(start >= 0, `README.md has no "${marker}"`);
  const fence = `\`\`\`${language}\n`;
  const open = readme.indexOf(fence, start);
  assert.ok(open >= 0, `no ${language} block after "${marker}"`);
  const close = readme.indexOf('\n```', open + fence.length);
  return readme.slice(open + fence.length, close + 1);
}

function ready(port) {
  return new Promise((resolve) => {
    httpGet({ host: '127.0.0.1', port, path: '/ready', agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode === 200));
    }).on('error', () => resolve(false));
  });
}

let herald;
let browser;
let folder;

before(async () => {
  assert.ok(existsSync(chromiumBinary), `${chromiumBinary} is missing: apt-get install chromium (./scripts/test does it)`);
  assert.ok(existsSync(heraldBinary), `Herald binary not found at ${heraldBinary}: run cargo build --bin herald`);
});

after(async () => {
  await browser?.close();
  if (herald && herald.exitCode === null) {
    herald.kill('SIGTERM');
    await new Promise((done) => herald.once('exit', done));
  }
  if (folder) {
    await rm(folder, { recursive: true, force: true });
  }
});

test('the README quick start shows an event from the Node SDK in a browser', async () => {
  const readme = await readFile(join(packageDir, '..', 'README.md'), 'utf8');
  const html = codeBlockAfter(readme, 'Save this as `index.html`', 'html');
  const trigger = codeBlockAfter(readme, 'Save this as `trigger.js`', 'js');
  assert.match(html, /wsPort: 6001/);
  assert.match(trigger, /port: '6001'/);

  // `cargo run --release` with no configuration, except the port: 6001 may be taken on a test machine.
  const port = await freePort();
  herald = spawn(heraldBinary, [], {
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD__'))), PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  herald.stdout.on('data', (chunk) => (log += chunk));
  herald.stderr.on('data', (chunk) => (log += chunk));
  const deadline = Date.now() + WAIT_MS;
  while (!(await ready(port))) {
    assert.ok(Date.now() < deadline, `Herald did not start:\n${log}`);
    await delay(25);
  }
  assert.match(log, /DEVELOPMENT app/, 'Herald warns that the development credentials are in use');

  // "In an empty folder, install the official Pusher client and server libraries" (linked, not downloaded).
  folder = await mkdtemp(join(tmpdir(), 'herald-readme-'));
  await symlink(join(packageDir, 'node_modules'), join(folder, 'node_modules'), 'dir');
  await writeFile(join(folder, 'index.html'), html.replaceAll('6001', String(port)));
  await writeFile(join(folder, 'trigger.js'), trigger.replaceAll('6001', String(port)));

  browser = await chromium.launch({
    executablePath: chromiumBinary,
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
  const page = await browser.newPage();
  await page.goto(pathToFileURL(join(folder, 'index.html')).href);
  // pusher-js is subscribed once Herald has confirmed the channel.
  await page.waitForFunction(
    () => window.Pusher?.instances?.[0]?.channel('my-channel')?.subscribed === true,
    null,
    { timeout: WAIT_MS },
  );

  const output = await new Promise((resolve, reject) => {
    execFile('node', ['trigger.js'], { cwd: folder, timeout: WAIT_MS }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  assert.equal(output.trim(), 'sent');
  await page.waitForFunction(() => document.getElementById('log').textContent !== 'waiting…', null, {
    timeout: WAIT_MS,
  });
  assert.equal(await page.textContent('#log'), '{"message":"hello from Herald"}');
});
