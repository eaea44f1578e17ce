// `aks-netguard serve` as a child process, as a user runs it: started on a free port, polled, stopped with Ctrl-C.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin', 'aks-netguard.js');

export interface Served {
  url: string;
  output(): string;
  /** Ctrl-C; resolves with the exit code once the process has ended by itself. */
  stop(): Promise<number | null>;
}

/** `aks-netguard serve --port 0`; resolves once it says where it listens. */
export function startServe(environment: Record<string, string>): Promise<Served> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { cwd: ROOT, env: environment });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopped: Promise<number | null> | undefined;
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (url) resolve({ url, output: () => out, stop: () => (stopped ??= (child.exitCode === null && child.kill('SIGINT'), exited)) });
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${out}`)));
  });
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.status, text: await res.text() };
}

/** Polls until `find` returns something; fails (with serve's output) if serve stops meanwhile. */
export async function waitFor<T>(served: Served, what: string, find: () => T | undefined): Promise<T> {
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (/Stopped\.|aks-netguard: /.test(served.output())) throw new Error(`serve stopped while waiting for ${what}:\n${served.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ServedInProcess {
  url: string;
  stdout(): string;
  stderr(): string;
  /** Ctrl-C; resolves with the command's exit code. */
  stop(): Promise<number>;
}

/** `aks-netguard serve --port 0` run in process (runCli), as the user's command; resolves once it listens. */
export async function serveInProcess(env: NodeJS.ProcessEnv): Promise<ServedInProcess> {
  const { runCli } = await import('../../shared/cli/main');
  const { waitUntil } = await import('./waitUntil');
  let out = '';
  let err = '';
  let interrupt!: () => void;
  const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
  const running = runCli(['serve', '--port', '0'], { stdout: (t) => (out += t), stderr: (t) => (err += t), env, untilInterrupted: () => interrupted });
  let ended = false;
  void running.finally(() => (ended = true));
  await waitUntil(() => ended || /serving on/.test(out));
  const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
  if (!url) throw new Error(`serve ended before listening: ${out}${err}`);
  let stopped: Promise<number> | undefined;
  return {
    url,
    stdout: () => out,
    stderr: () => err,
    stop: () => {
      interrupt();
      return (stopped ??= running);
    },
  };
}
