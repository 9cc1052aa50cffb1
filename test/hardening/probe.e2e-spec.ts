import { startIdentitySandbox } from '@app/identity-sandbox';
import { call, startVendor } from './harness';

it('probe', async () => {
  const idp = await startIdentitySandbox({ clients: [{ clientId: 'a.client', secret: 's1' }] });
  const v = await startVendor({
    scheduler: false,
    environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 300 } },
    clients: [{ clientId: 'a.client', environment: 'uat', secret: 's1' }],
    callers: [{ name: 'c', keys: ['goodkey'], clients: ['*'], admin: true }],
  });
  const out: unknown[] = [];
  for (const m of ['OPTIONS', 'PUT', 'DELETE', 'POST', 'PATCH'])
    for (const ct of ['application/json', 'text/plain', 'application/x-www-form-urlencoded', ''])
      for (const p of ['/tokens/a.client', '/nowhere', '/admin/reload'])
        for (const b of ['\0', '{}', '']) {
          const r = await call(v.url, p, { key: 'goodkey', method: m, headers: ct ? { 'content-type': ct } : {}, body: b });
          out.push(`${m} ${p} ct=${ct} body=${JSON.stringify(b)} -> ${r.status} ${r.text.slice(0, 150)} cc=${r.headers['cache-control']} csp=${r.headers['content-security-policy'] ? 'y' : 'n'}`);
        }
  process.stderr.write(out.join('\n') + '\n' + v.logs.lines.filter((l) => /error/.test(l)).slice(0, 5).join('\n') + '\n');
  await v.close();
  await idp.close();
});
