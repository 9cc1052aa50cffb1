'use strict';
// `node --experimental-websocket bench/lib/gc-helper.js <inspector port>`: asks the V8 of the
// process listening on that inspector port (loopback) for a full garbage collection
// (HeapProfiler.collectGarbage), so the memory read next is live data, not garbage that
// happens not to have been collected yet. Node 20 has WebSocket only behind that flag, hence
// a helper process.
const port = Number(process.argv[2]);

async function main() {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer from the inspector')), 20_000);
    ws.onerror = () => reject(new Error('inspector connection failed'));
    ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    ws.onmessage = (event) => {
      if (JSON.parse(event.data).id === 1) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  ws.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  },
);
