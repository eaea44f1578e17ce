// Waiting for something a test started (a server printing its URL, a queue draining) without a short
// deadline of its own: on a loaded machine a start can take many times longer than on a quiet one.
// The test's own timeout is the only bound, so a thing that never happens still fails the test.

/**
 * Resolves once `ready()` is true, checking every `everyMs`. The timers are unref'd: after a test
 * timed out, a wait that is still polling never keeps the jest worker from exiting.
 */
export async function waitUntil(ready: () => boolean, everyMs = 10): Promise<void> {
  while (!ready()) await new Promise((r) => setTimeout(r, everyMs).unref());
}
