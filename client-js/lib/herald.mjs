// Starts the real Herald binary with a generated TOML file on a free local port, and stops it with SIGTERM.
// Each test file starts its own Herald, so test files can run in parallel.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Upper bound for Herald to start listening or to exit after SIGTERM. */
const PROCESS_WAIT_MS = 20_000;

export const heraldBinary = process.env.HERALD_BIN || resolve(packageDir, '../target/debug/herald');

/** A port nothing listens on right now: bind port 0, read the port, close. */
export async function freePort() {
  const server = createServer();
  await new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', done);
  });
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/**
 * The status of GET /ready, or null when nothing answers.
 * No keep-alive: an idle pooled connection would hold up Herald's graceful shutdown.
 */
function readyStatus(host, port) {
  return new Promise((resolve) => {
    const request = httpGet({ host, port, path: '/ready', agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', () => resolve(null));
  });
}

/** A TOML value for the few types the tests use; JSON string syntax is valid TOML. */
function tomlValue(value) {
  if (Array.isArray(value)) {
    return `[${value.map(tomlValue).join(', ')}]`;
  }
  if (typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  if (value !== null && typeof value === 'object') {
    // An inline table, e.g. one element of an app's `webhooks` array.
    const entries = Object.entries(value).map(([key, item]) => `${JSON.stringify(key)} = ${tomlValue(item)}`);
    return `{ ${entries.join(', ')} }`;
  }
  throw new Error(`no TOML form for ${JSON.stringify(value)}`);
}

/** Writes nested plain objects as TOML tables: scalars first, then one `[a.b]` table per nested object. */
function tomlTables(prefix, table, lines) {
  const nested = [];
  const scalars = [];
  for (const [key, value] of Object.entries(table)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      nested.push([key, value]);
    } else {
      scalars.push(`${key} = ${tomlValue(value)}`);
    }
  }
  if (prefix && scalars.length > 0) {
    lines.push('', `[${prefix}]`, ...scalars);
  } else {
    lines.push(...scalars);
  }
  for (const [key, value] of nested) {
    tomlTables(prefix ? `${prefix}.${key}` : key, value, lines);
  }
}

export function toToml(config) {
  const lines = [];
  tomlTables('', config, lines);
  return `${lines.join('\n')}\n`;
}

/**
 * One Herald process.
 * `apps` maps app ids to their `[apps.<id>]` settings; `server` adds to the `[server]` table.
 */
export class Herald {
  constructor({ apps, server = {}, webhooks = {} }) {
    this.apps = apps;
    this.serverSettings = server;
    this.webhookSettings = webhooks;
    this.host = '127.0.0.1';
    this.port = null;
    this.output = '';
    this.child = null;
    this.workDir = null;
  }

  get baseUrl() {
    return `http://${this.host}:${this.port}`;
  }

  async start() {
    assert.ok(
      existsSync(heraldBinary),
      `Herald binary not found at ${heraldBinary}: run \`cargo build --bin herald\` at the repository root, or set HERALD_BIN`,
    );
    if (this.port === null) {
      this.port = await freePort();
    }
    if (this.workDir === null) {
      this.workDir = await mkdtemp(join(tmpdir(), 'herald-conformance-'));
    }
    const configPath = join(this.workDir, 'herald.toml');
    const config = {
      server: { host: this.host, port: this.port, shutdown_timeout: '5s', ...this.serverSettings },
      webhooks: { store: join(this.workDir, 'webhooks.redb'), ...this.webhookSettings },
      apps: this.apps,
    };
    await writeFile(configPath, toToml(config));

    // Settings from the caller's environment would override the generated file.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD__') && name !== 'PORT'),
    );
    const child = spawn(heraldBinary, ['--config', configPath], {
      cwd: this.workDir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (chunk) => {
      this.output = (this.output + chunk).slice(-30_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.exitStatus = null;
    child.exited = new Promise((done) => {
      child.once('exit', (code, signal) => {
        child.exitStatus = { code, signal };
        done(child.exitStatus);
      });
    });
    await this.waitReady(child);
    return this;
  }

  /** Polls GET /ready until it answers 200, within PROCESS_WAIT_MS. */
  async waitReady(child) {
    const deadline = Date.now() + PROCESS_WAIT_MS;
    while (Date.now() < deadline) {
      if (child.exitStatus) {
        throw new Error(`Herald exited (${JSON.stringify(child.exitStatus)}) before it was ready:\n${this.output}`);
      }
      if ((await readyStatus(this.host, this.port)) === 200) {
        return;
      }
      await delay(25);
    }
    throw new Error(`Herald was not ready within ${PROCESS_WAIT_MS} ms:\n${this.output}`);
  }

  /** SIGTERM, then waits for the exit; returns `{code, signal}`. */
  async stop() {
    const child = this.child;
    if (!child) {
      return null;
    }
    this.child = null;
    if (!child.exitStatus) {
      child.kill('SIGTERM');
    }
    const status = await Promise.race([child.exited, delay(PROCESS_WAIT_MS, null, { ref: false })]);
    if (!status) {
      child.kill('SIGKILL');
      throw new Error(`Herald did not exit within ${PROCESS_WAIT_MS} ms of SIGTERM:\n${this.output}`);
    }
    return status;
  }

  /** Stops Herald and deletes its working directory. */
  async dispose() {
    await this.stop();
    if (this.workDir) {
      await rm(this.workDir, { recursive: true, force: true });
      this.workDir = null;
    }
  }
}

export async function startHerald(settings) {
  const herald = new Herald(settings);
  try {
    return await herald.start();
  } catch (error) {
    await herald.dispose();
    throw error;
  }
}
