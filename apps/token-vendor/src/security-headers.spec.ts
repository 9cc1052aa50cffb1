import { API_CSP, helmetHeaders, isSwaggerUiPath, securityHeaderSets } from './security-headers';

describe('security headers', () => {
  it("are helmet's own answer, computed from its options (not a copy written by hand)", () => {
    expect(helmetHeaders()).toEqual({
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Origin-Agent-Cluster': '?1',
      'Referrer-Policy': 'no-referrer',
      'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
      'X-Content-Type-Options': 'nosniff',
      'X-DNS-Prefetch-Control': 'off',
      'X-Download-Options': 'noopen',
      'X-Frame-Options': 'DENY',
      'X-Permitted-Cross-Domain-Policies': 'none',
      'X-XSS-Protection': '0',
    });
    // Other options, other headers: the set follows helmet.
    const sameOrigin = helmetHeaders({ frameguard: { action: 'sameorigin' }, hsts: false });
    expect(sameOrigin['X-Frame-Options']).toBe('SAMEORIGIN');
    expect(sameOrigin).not.toHaveProperty('Strict-Transport-Security');
    expect(sameOrigin['Content-Security-Policy']).toContain("default-src 'self'");
  });

  it("give JSON answers the OWASP REST set, the strict CSP and no caching; the UI all of helmet's", () => {
    const sets = securityHeaderSets();
    expect(sets.api).toEqual({
      'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Content-Security-Policy': API_CSP,
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
    });
    expect(sets.swaggerUi).toEqual(helmetHeaders());
    expect(sets.swaggerUi).not.toHaveProperty('Content-Security-Policy');
    expect(sets.swaggerUi['X-Content-Type-Options']).toBe('nosniff');
    expect(Object.isFrozen(sets.api)).toBe(true);
  });

  it.each([
    ['/docs', true],
    ['/docs/', true],
    ['/docs/swagger-ui.css', true],
    ['/docs?x=1', true],
    ['/docs-json', false],
    ['/documents', false],
    ['/tokens/docs', false],
  ])('%s is the Swagger UI: %s', (url, expected) => {
    expect(isSwaggerUiPath(url)).toBe(expected);
  });
});
