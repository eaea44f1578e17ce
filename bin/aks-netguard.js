#!/usr/bin/env node
'use strict';
// Runs the compiled CLI (npm ci builds it through the prepare script).
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'shared', 'cli', 'run.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('aks-netguard: not built yet; run `npm ci` (or `npm run build`) in ' + path.join(__dirname, '..') + '\n');
  process.exit(1);
}
require(entry);
