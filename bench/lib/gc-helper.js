// @ts-check
'use strict';
// `node --experimental-websocket bench/lib/gc-helper.js <inspector port>`: asks the V8 of the
// process listening on that inspector port (loopback) for a full garbage collection
// (HeapProfiler.collectGarbage), so the memory read next is live data, not garbage that
// happens not to have been collected yet. Node 20 has WebSocket only behind that flag, hence
// a helper process.
const port = Number(process.argv[2]);

async function main() {
  const targets = /** @type {{ webSocketDebuggerUrl: string }[]} */ (
    await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()
  );
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  /** @type {Promise<void>} */
  const collected = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer from the inspector')), 20_000);
    ws.onerror = () => reject(new Error('inspector connection failed'));
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    ws.onmessage = (event) => {
      /** @type {unknown} */
      const message = JSON.parse(String(event.data));
      if (/** @type {{ id?: number }} */ (message).id === 1) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  await collected;
  ws.close();
}

main().then(
  () => process.exit(0),
  (/** @type {Error} */ e) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  },
);
