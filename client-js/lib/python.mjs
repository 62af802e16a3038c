// Runs the scripts in python/ with the venv that `npm test` prepares (scripts/python-venv.mjs).

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const pythonBinary = join(packageDir, '.venv', 'bin', 'python');
const scriptsDir = join(packageDir, 'python');

/** Upper bound for one Python script run (interpreter start-up plus a few HTTP calls). */
const PYTHON_WAIT_MS = 20_000;

export function assertVenv() {
  assert.ok(existsSync(pythonBinary), `${pythonBinary} is missing: run \`node scripts/python-venv.mjs\` (npm test does)`);
}

/** The connection settings the Python SDK needs for one app of a running Herald. */
export function pythonApp(herald, appId, extra = {}) {
  const app = herald.apps[appId];
  return { app_id: appId, key: app.key, secret: app.secret, host: herald.host, port: herald.port, ...extra };
}

/** Runs python/sdk_calls.py and resolves with one outcome per call. */
export function pythonSdk(app, calls) {
  return new Promise((resolve, reject) => {
    execFile(
      pythonBinary,
      [join(scriptsDir, 'sdk_calls.py'), JSON.stringify({ ...app, calls })],
      { timeout: PYTHON_WAIT_MS },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`sdk_calls.py failed: ${error.message}\n${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout));
      },
    );
  });
}

/** Runs python/validate_webhook.py: the Python SDK's own webhook check. */
export function pythonValidateWebhook(check) {
  return new Promise((resolve, reject) => {
    execFile(
      pythonBinary,
      [join(scriptsDir, 'validate_webhook.py'), JSON.stringify(check)],
      { timeout: PYTHON_WAIT_MS },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`validate_webhook.py failed: ${error.message}\n${stderr}`));
          return;
        }
        resolve(JSON.parse(stdout));
      },
    );
  });
}

/** Starts python/auth_server.py and resolves once it printed its port. */
export function startPythonAuthServer(app) {
  const child = spawn(pythonBinary, [join(scriptsDir, 'auth_server.py'), JSON.stringify(app)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-10_000);
  });
  const exited = new Promise((done) => child.once('exit', done));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`auth_server.py printed no port within ${PYTHON_WAIT_MS} ms:\n${stderr}`));
    }, PYTHON_WAIT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`auth_server.py exited with ${code}:\n${stderr}`));
    });
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const { port } = JSON.parse(line);
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}
