// Builds dist/: the page, its stylesheet, pusher-js's own browser build copied as it ships, and
// offers.js, the page script bundled with the qrcode package (which has no browser build of its own).
// herald-config.js is left out on purpose: Herald generates it from its configuration.

import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');
const pusherWeb = join(dirname(createRequire(import.meta.url).resolve('pusher-js/package.json')), 'dist', 'web');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  entryPoints: [join(src, 'main.js')],
  outfile: join(dist, 'offers.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

await copyFile(join(src, 'index.html'), join(dist, 'index.html'));
await copyFile(join(src, 'offers.css'), join(dist, 'offers.css'));
await copyFile(join(pusherWeb, 'pusher.min.js'), join(dist, 'pusher.min.js'));
await copyFile(join(pusherWeb, 'pusher.min.js.LICENSE.txt'), join(dist, 'pusher.min.js.LICENSE.txt'));

console.log(`built ${dist}`);
