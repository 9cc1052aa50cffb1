#!/usr/bin/env node
// @ts-check
// `npm run caller-key -- <caller-name>`: mints a caller key (256 random bits) and prints it ONCE,
// with its SHA-256 in each form the configuration takes (inline keySha256, or a keySha256File
// in the chart's caller-digests Secret). The key itself is stored nowhere by us.
const { randomBytes, createHash } = require('node:crypto');

/** The service's rule for caller names (libs/config service-config.schema.ts). */
const CALLER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Where the chart mounts the caller-digests Secret (helm/token-vendor values.yaml). */
const CALLER_DIGESTS_DIR = '/var/run/secrets/token-vendor/callers';

const USAGE = `Usage: npm run caller-key -- <caller-name>

Mints a caller key and prints it once, with its SHA-256 digest in the forms the
configuration takes: inline (keySha256) or in a file of digests (keySha256File,
e.g. the Helm chart's caller-digests Secret). Only the digest goes into the
configuration; the key goes to the calling service and is stored nowhere else.

  <caller-name>  the caller's name in the configuration: letters, digits, ".", "_", "-",
                 starting with a letter or digit, at most 64 characters (default: my-service)
  -h, --help     print this help
`;

/**
 * @param {string[]} argv the arguments after the script's name
 * @returns {number} the exit code
 */
function main(argv) {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = argv.filter((a) => a.startsWith('-'));
  if (unknown.length > 0 || argv.length > 1) {
    process.stderr.write(`caller-key: unexpected ${unknown[0] ?? argv[1]}\n\n${USAGE}`);
    return 2;
  }
  const name = argv[0] ?? 'my-service';
  if (!CALLER_NAME.test(name)) {
    process.stderr.write(
      `caller-key: invalid caller name ${JSON.stringify(name)}: use letters, digits, ".", "_", "-", starting with a letter or digit, at most 64 characters\n`,
    );
    return 2;
  }
  const key = `tvk_${randomBytes(32).toString('base64url')}`;
  const digest = createHash('sha256').update(key, 'utf8').digest('hex');
  process.stdout
    .write(`Caller key for "${name}" (give it to the calling service; it is shown only now):

  ${key}

Its SHA-256, which is all the configuration holds: ${digest}

Either list the digest inline in the configuration file:

  callers:
    - name: ${name}
      keySha256: [${digest}]
      clients: []

or keep it in a file of digests (one per line; a changed file applies without restart).
With the Helm chart, in your values:

  callerDigests:
    create: true
    digests:
      ${name}: [${digest}]
  config:
    callers:
      - name: ${name}
        keySha256File: ${CALLER_DIGESTS_DIR}/${name}
        clients: []

or, with a Secret managed elsewhere (callerDigests.existingSecret: token-vendor-caller-digests):

  kubectl create secret generic token-vendor-caller-digests --from-literal=${name}=${digest}

List the client ids (or '*') the caller may use under clients. When rotating, keep the old
digest listed until the caller has switched, then remove it.
`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
