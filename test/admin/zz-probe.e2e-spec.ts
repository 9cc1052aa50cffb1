import { startIdentitySandbox } from '@app/identity-sandbox';
import { httpRequest } from '../support/http';
import { startTestApp } from '../support/test-app';

it('probe', async () => {
  const idp = await startIdentitySandbox({ clients: [{ clientId: 'a.client', secret: 's-1' }], expiresIn: 1200 });
  const svc = await startTestApp({
    scheduler: false,
    environments: { uat: { tokenUrl: idp.tokenUrl } },
    clients: [{ clientId: 'a.client', environment: 'uat', secret: 's-1' }],
    callers: [{ name: 'adm', keys: ['k-adm-000000000000000000'], clients: ['*'], admin: true }],
  });
  const r = await httpRequest(`${svc.url}/tokens/a.client`, { headers: { authorization: 'Bearer k-adm-000000000000000000' } });
  console.log(r.status, r.text);
  const a = await httpRequest(`${svc.url}/admin/clients`, { headers: { authorization: 'Bearer k-adm-000000000000000000' } });
  console.log(a.status, a.headers, a.text);
  await new Promise((r) => setTimeout(r, 100));
  console.log(svc.logs.lines.join('\n'));
  await svc.close();
  await idp.close();
});
