// Process entry of the CLI: wires the real stdin/stdout/stderr and exit status.
import { runCli } from './main';

/** All of stdin, or (given a limit) stops reading once more than `limit` bytes came: the caller refuses it. */
async function readStdin(limit?: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.from(chunk);
    chunks.push(b);
    size += b.length;
    if (limit !== undefined && size > limit) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

// `aks-netguard … | head`: a reader that goes away is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

runCli(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  readStdin,
  untilInterrupted: () =>
    new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    }),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`aks-netguard: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
