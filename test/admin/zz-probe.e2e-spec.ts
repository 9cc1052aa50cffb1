import { startIdentitySandbox } from '@app/identity-sandbox';
import { httpRequest } from '../support/http';
import { startTestApp } from '../support/test-app';

it('probe sighup', async () => {
  const idp = await startIdentitySandbox({ clients: [{ clientId: 'a.client', secret: 's-1' }], expiresIn: 1200 });
  const svc = await startTestApp({
    scheduler: false,
    environments: { uat: { tokenUrl: idp.tokenUrl } },
    clients: [{ clientId: 'a.client', environment: 'uat', secret: 's-1' }],
    callers: [{ name: 'adm', keys: ['k-adm-000000000000000000'], clients: ['*'], admin: true }],
  });
  console.log('listeners', process.listeners('SIGHUP').length);
  process.kill(process.pid, 'SIGHUP');
  await new Promise((r) => setTimeout(r, 1000));
  const r = await httpRequest(`${svc.url}/tokens/a.client`, { headers: { authorization: 'Bearer k-adm-000000000000000000' } }).catch((e) => ({ status: String(e), text: '' }));
  console.log(r.status);
  console.log(svc.logs.lines.slice(-6).join('\n'));
  await svc.close();
  await idp.close();
});
