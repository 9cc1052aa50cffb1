import { X509Certificate } from 'node:crypto';
import { readAtMost } from './bounded-read';

/** Largest CA bundle read: a full system bundle is about 220 KiB. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/**
 * A CA file (an environment's `caFile`, REDIS_TLS_CA_FILE): its PEM text, at most
 * MAX_CA_FILE_BYTES, holding at least one certificate, every one of which parses. Text between
 * the blocks (a system bundle's comments) is allowed. A bundle cut off inside a certificate (a
 * file written in place, read mid-write) is refused rather than trusted in part: Node would drop
 * the broken tail silently. Read at start (the configuration check) and when the file changes.
 * Throws the file system's error when it cannot be read, else an Error whose message is the
 * problem (`<path> holds no PEM certificate`, `<path>: certificate 2 of 3 cannot be parsed`).
 */
export function readCaBundle(path: string): string {
  const bytes = readAtMost(path, MAX_CA_FILE_BYTES + 1);
  if (bytes.length > MAX_CA_FILE_BYTES) {
    throw new Error(`${path} is larger than ${MAX_CA_FILE_BYTES} bytes`);
  }
  const pem = bytes.toString('utf8');
  const blocks = certificateBlocks(pem);
  if (blocks.length === 0) throw new Error(`${path} holds no PEM certificate`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new Error(
        `${path}: certificate ${i + 1} of ${blocks.length} cannot be parsed (cut off or damaged)`,
      );
    }
  });
  return pem;
}

/** Each `BEGIN CERTIFICATE` block, up to its END, or up to the next BEGIN or the end of the text when it has none. */
function certificateBlocks(pem: string): string[] {
  const blocks: string[] = [];
  let from = 0;
  for (;;) {
    const begin = pem.indexOf(BEGIN, from);
    if (begin < 0) return blocks;
    const next = pem.indexOf(BEGIN, begin + BEGIN.length);
    const end = pem.indexOf(END, begin + BEGIN.length);
    if (end < 0 || (next >= 0 && next < end)) {
      blocks.push(pem.slice(begin, next < 0 ? undefined : next));
      if (next < 0) return blocks;
      from = next;
      continue;
    }
    blocks.push(pem.slice(begin, end + END.length));
    from = end + END.length;
  }
}

/**
 * Why the CA file named by `field` cannot be used at start (`<field>: cannot read <path> (ENOENT)`,
 * `<field>: <path> holds no PEM certificate`, ...), or undefined when it can.
 */
export function caFileProblem(field: string, path: string): string | undefined {
  try {
    readCaBundle(path);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === undefined
      ? `${field}: ${(e as Error).message}`
      : `${field}: cannot read ${path} (${code})`;
  }
}
