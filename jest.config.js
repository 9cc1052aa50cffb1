/**
 * Three tiers, one runner: unit specs beside the code (the bench's plain-JS helpers included),
 * integration and e2e under test/.
 */
const moduleNameMapper = {
  '^@app/identity-sandbox$': '<rootDir>/apps/identity-sandbox/src',
  '^@app/token-vendor$': '<rootDir>/apps/token-vendor/src',
  '^@app/(.*)$': '<rootDir>/libs/$1/src',
  '^@token-vendor/client$': '<rootDir>/libs/client/src',
  '^@token-vendor/client/nest$': '<rootDir>/libs/client/src/nest',
};
const base = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', {}],
    // content-disposition@3 (via @fastify/static, for the Swagger UI) and jose@6 ship only ES
    // modules, which Node's require() loads but Jest's module runtime does not: compile them to CJS.
    '/node_modules/(content-disposition|jose)/.+\\.js$': [
      'ts-jest',
      { tsconfig: { allowJs: true, isolatedModules: true } },
    ],
    // The OpenTelemetry exporter's CommonJS build loads node:http with a dynamic import(),
    // which Jest's module runtime cannot run: compiled to require() like the above.
    '/node_modules/@opentelemetry/otlp-exporter-base/.+\\.cjs$': [
      'ts-jest',
      { tsconfig: { allowJs: true, isolatedModules: true } },
    ],
  },
  transformIgnorePatterns: [
    '/node_modules/(?!(content-disposition|jose|@opentelemetry/otlp-exporter-base)/)',
  ],
  testEnvironment: 'node',
  // dist/client/package.json (the built SDK) would shadow libs/client's in Jest's module map.
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  moduleNameMapper,
  rootDir: __dirname,
};
module.exports = {
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  projects: [
    {
      ...base,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/libs/**/*.spec.ts',
        '<rootDir>/apps/**/*.spec.ts',
        '<rootDir>/bench/**/*.spec.js',
      ],
    },
    { ...base, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.int-spec.ts'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
