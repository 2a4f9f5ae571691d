/**
 * Polls `check` until it returns something other than undefined (the state under test changes in another process or
 * connection), every `everyMs`; past `timeoutMs` it throws naming `what`. Every wait loop of the suite goes through
 * here, so none can hang a run.
 */
export async function waitFor<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A promise another part of the test resolves (`open`): to hold a transaction open at a chosen point. */
export function latch(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}
