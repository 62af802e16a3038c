// Creates client-js/.venv with the Python packages of python/requirements.txt, once.
// Runs before `npm test`; a venv already made from the same requirements is left alone.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const venvDir = join(packageDir, '.venv');
const requirementsPath = join(packageDir, 'python', 'requirements.txt');
const stampPath = join(venvDir, 'herald-requirements.sha256');
const venvPython = join(venvDir, 'bin', 'python');

function run(command, args) {
  const result = spawnSync(command, args, { cwd: packageDir, stdio: 'inherit' });
  if (result.error) {
    throw result.error;
  }
  return result.status === 0;
}

function fail(message) {
  console.error(`python-venv: ${message}`);
  process.exit(1);
}

const requirementsHash = createHash('sha256').update(readFileSync(requirementsPath)).digest('hex');
if (existsSync(venvPython) && existsSync(stampPath) && readFileSync(stampPath, 'utf8').trim() === requirementsHash) {
  process.exit(0);
}

const probe = spawnSync('python3', ['-c', 'import ensurepip, venv'], { stdio: 'ignore' });
if (probe.error) {
  fail('python3 was not found; on Debian install it with `apt-get install -y python3 python3-venv`.');
}
if (probe.status !== 0) {
  const version = spawnSync('python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
    encoding: 'utf8',
  }).stdout.trim();
  fail(
    `python3 cannot create virtual environments (ensurepip is missing); on Debian install it with ` +
      `\`apt-get install -y python3-venv\` (or python${version}-venv), then run npm test again.`,
  );
}

// A half-made venv from an interrupted run is rebuilt from scratch.
rmSync(venvDir, { recursive: true, force: true });
console.log(`python-venv: creating ${venvDir}`);
if (!run('python3', ['-m', 'venv', venvDir])) {
  fail('`python3 -m venv` failed (see above).');
}
const pipArgs = ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', '-r', requirementsPath];
if (!run(venvPython, pipArgs)) {
  fail('installing python/requirements.txt failed (see above).');
}
writeFileSync(stampPath, `${requirementsHash}\n`);
