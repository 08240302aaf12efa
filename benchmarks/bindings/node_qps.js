'use strict';
// Search QPS through the Node binding: the same chunks as c_qps.c.
//   node_qps.js INDEX QUERIES DIM K EF single|batch SECONDS THREADS BATCH
const fs = require('fs');
const path = require('path');
const knytt = require(path.join(__dirname, '..', '..', 'bindings', 'node'));

const wall = () => Number(process.hrtime.bigint()) / 1e9;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

async function main([file, qfile, dimS, kS, efS, mode, secsS, threadsS, batchS]) {
  const dim = +dimS;
  const k = +kS;
  const secs = +secsS;
  const buf = fs.readFileSync(qfile);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const nq = all.length / dim;
  const rows = [];
  for (let i = 0; i < nq; i++) rows.push(all.subarray(i * dim, (i + 1) * dim));
  const batch = +batchS;
  const big = new Float32Array(batch * dim);
  for (let i = 0; i < batch; i++) big.set(rows[i % nq], i * dim);
  const ix = knytt.Index.load(file);
  const opts = { ef: +efS, threads: +threadsS };
  const n = mode === 'single' ? nq : batch;
  let best = 0;
  let bestCpu = 0;
  let done = 0;
  let t;
  const t0 = wall();
  for (;;) {
    let w = wall();
    let c = cpu();
    if (mode === 'single') {
      for (const q of rows) ix.search(q, k, opts);
    } else {
      await ix.searchBatch(big, k, opts);
    }
    w = wall() - w;
    c = cpu() - c;
    if (w > 0) best = Math.max(best, n / w);
    if (c > 0) bestCpu = Math.max(bestCpu, n / c);
    done += n;
    if ((t = wall() - t0) >= secs) break;
  }
  ix.close();
  console.log(`qps ${best.toFixed(1)} cpu_qps ${bestCpu.toFixed(1)} ` +
              `mean_qps ${(done / t).toFixed(1)}`);
}

main(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); });
