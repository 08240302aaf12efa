'use strict';
// Shared by the tests: deterministic data, the C reference program
// (bindings/tests/knytt_ref.c) and the knytt command, built by make.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..', '..');

function tool(env, name) {
  const p = process.env[env] || path.join(ROOT, 'build', 'bin', name);
  if (!fs.existsSync(p)) throw new Error(`${p} not found: run make (or set ${env})`);
  return p;
}

// mulberry32 + Box-Muller: the same vectors on every run.
function gaussian(n, dim, seed) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n * dim);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  }
  return out;
}

function tmpdir() { return fs.mkdtempSync(path.join(os.tmpdir(), 'knytt-node-')); }

// The C API's answers: {labels: bigint[][], distances: number[][]}.
function cAnswers(metric, quant, dim, base, queries, k, ef, save) {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'b.f32'), Buffer.from(base.buffer));
  fs.writeFileSync(path.join(dir, 'q.f32'), Buffer.from(queries.buffer));
  const args = [metric, quant, String(dim), path.join(dir, 'b.f32'),
    path.join(dir, 'q.f32'), String(k), String(ef)];
  if (save) args.push(save);
  const out = execFileSync(tool('KNYTT_REF', 'knytt_ref'), args, { encoding: 'utf8' });
  const labels = [];
  const distances = [];
  for (const line of out.trim().split('\n')) {
    const f = line.split(' ');
    labels.push(f.slice(0, k).map(BigInt));
    distances.push(f.slice(k).map(hexFloat));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { labels, distances };
}

// C99 "%a" text -> Number (exact).
function hexFloat(s) {
  const m = /^(-?)0x([01])\.?([0-9a-f]*)p([+-]\d+)$/.exec(s);
  if (!m) {
    if (s === 'inf') return Infinity;
    throw new Error('bad hex float ' + s);
  }
  const mant = parseInt(m[2] + m[3], 16) / 16 ** m[3].length;
  return (m[1] ? -1 : 1) * mant * 2 ** Number(m[4]);
}

// A small synthetic shop written by `knytt gen` (fixed seed and time).
function shop() {
  const dir = tmpdir();
  execFileSync(tool('KNYTT_CLI', 'knytt'), ['--quiet', 'gen', '--out', dir,
    '--items', '300', '--users', '60', '--events', '4000', '--seed', '7',
    '--now', '1767225600000']);
  return dir;
}

function cliJson(db, ...args) {
  return JSON.parse(execFileSync(tool('KNYTT_CLI', 'knytt'),
    ['--db', 'sqlite:' + db, '--json', '--quiet', ...args], { encoding: 'utf8' }));
}

module.exports = { gaussian, cAnswers, tmpdir, shop, cliJson, ROOT };
