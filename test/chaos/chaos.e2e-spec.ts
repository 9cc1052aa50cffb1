import { formatReport, runChaos } from './chaos';

/**
 * The short chaos run of the suite (README "The chaos run"): a fixed seed whose faults cover
 * every kind, ~20 s of faults. `npm run chaos` runs longer ones with any seed.
 */
const SEED = Number(process.env.CHAOS_SEED ?? 12);

describe('chaos: 3 replicas under load while seeded faults land', () => {
  it(`seed ${SEED}: no revoked token served late, no caller failure while a valid token existed, IdP requests within budget`, async () => {
    const report = await runChaos({ seed: SEED, durationMs: 20_000 });
    const printed = formatReport(report);
    if (!report.ok || process.env.FLEET_DEBUG) process.stderr.write(`${printed}\n`);
    expect(report.revokedServed).toEqual([]);
    expect(report.failures.map((f) => [f.replica, f.status, f.error ?? f.body.error])).toEqual([]);
    expect(report.idpRequests).toBeLessThanOrEqual(report.idpBudget);
    // The run judged something: revocations happened and answers were checked.
    expect(report.revocations.length).toBeGreaterThan(0);
    expect(report.judged).toBeGreaterThan(0);
  }, 90_000);
});
