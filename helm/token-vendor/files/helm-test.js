// `helm test`: waits for /health/ready through the Service, then, when a client and a
// caller key are given, gets one token for that client. Prints what it saw, never the
// key or the token. Runs on the service's own image (Node, no npm, no curl).
'use strict';

const base = process.env.TOKEN_VENDOR_URL;
const clientId = process.env.TEST_CLIENT_ID || '';
const environment = process.env.TEST_ENVIRONMENT || '';
const callerKey = process.env.TEST_CALLER_KEY || '';
const deadline = Date.now() + Number(process.env.TEST_TIMEOUT_SECONDS || 60) * 1000;

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

async function waitForReady() {
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(3000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  fail(`${base}/health/ready did not answer 200 in time (last: ${last})`);
}

async function getOneToken() {
  const query = environment ? `?environment=${encodeURIComponent(environment)}` : '';
  const url = `${base}/tokens/${encodeURIComponent(clientId)}${query}`;
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${callerKey}` },
    signal: AbortSignal.timeout(30000),
  });
  const body = await res.json().catch(() => ({}));
  if (res.status !== 200) {
    fail(`GET /tokens/${clientId}${query}: HTTP ${res.status} ${body.error || ''}`.trim());
  }
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    fail(`GET /tokens/${clientId}${query}: 200 without an access_token`);
  }
  console.log(
    `OK: a token for ${clientId}${query}, ${body.token_type}, expires in ${body.expires_in} s`,
  );
}

(async () => {
  if (!base) fail('TOKEN_VENDOR_URL is not set');
  await waitForReady();
  console.log(`OK: ${base}/health/ready`);
  if (!clientId || !callerKey) {
    console.log('No tests.clientId / tests.callerKeySecret: token check skipped.');
    return;
  }
  await getOneToken();
})().catch((e) => fail(e.message));
