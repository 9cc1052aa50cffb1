#!/usr/bin/env node
// `npm run caller-key [name]`: mints a caller key (256 random bits) and prints it ONCE, with
// the SHA-256 that goes into the configuration. The key itself is stored nowhere by us.
const { randomBytes, createHash } = require('node:crypto');

const name = process.argv[2] || 'my-service';
const key = `tvk_${randomBytes(32).toString('base64url')}`;
const digest = createHash('sha256').update(key, 'utf8').digest('hex');

process.stdout.write(`Caller key (give it to the calling service; it is shown only now):

  ${key}

Add its SHA-256 to the caller in the configuration (keep the old digest listed until the
caller has switched, then remove it):

  callers:
    - name: ${name}
      keySha256: [${digest}]
`);
