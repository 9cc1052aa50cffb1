import { formatReport, runChaos } from './chaos';

/**
 * `npm run chaos [-- --seed N] [--duration SECONDS]`: one seeded chaos run (README "The chaos
 * run"); prints the seed first and the verdict last, exits 1 when a check failed.
 */
function argument(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  const inline = args.find((a) => a.startsWith(`--${name}=`));
  return inline?.slice(name.length + 3);
}

function integerArgument(name: string, fallback: number): number {
  const raw = argument(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    process.stderr.write(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return value;
}

async function main(): Promise<void> {
  const seed = integerArgument('seed', Math.floor(Math.random() * 2 ** 31));
  const durationSeconds = integerArgument('duration', 120);
  process.stdout.write(
    `chaos seed ${seed}, ${durationSeconds} s of faults (replay: npm run chaos -- --seed ${seed})\n`,
  );
  const report = await runChaos({
    seed,
    durationMs: durationSeconds * 1000,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  process.exit(report.ok ? 0 : 1);
}

main().catch((e: unknown) => {
  process.stderr.write(`chaos run failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
