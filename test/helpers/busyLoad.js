#!/usr/bin/env node
'use strict';
// Keeps CPUs busy for a bounded time, to run the test suite the way a loaded CI machine would:
//   node test/helpers/busyLoad.js [--workers 2] [--seconds 120] & npx jest
// Each worker thread spins until the deadline; the process then exits by itself (nothing to clean up).
const { Worker, isMainThread, workerData } = require('node:worker_threads');

if (isMainThread) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name}: expected a positive number`);
    return v;
  };
  const workers = arg('workers', 2);
  const deadline = Date.now() + arg('seconds', 120) * 1000;
  for (let i = 0; i < workers; i++) new Worker(__filename, { workerData: { deadline } });
  process.stderr.write(`busyLoad: ${workers} spinning thread(s) until ${new Date(deadline).toISOString()} (pid ${process.pid})\n`);
} else {
  let x = 0;
  while (Date.now() < workerData.deadline) {
    for (let i = 0; i < 1e6; i++) x = (x * 31 + i) | 0;
  }
}
