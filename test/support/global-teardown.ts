export default async function globalTeardown(): Promise<void> {
  const stop = (globalThis as { __stopTestRedis?: () => Promise<unknown> }).__stopTestRedis;
  if (stop) await stop();
}
