import { passThroughHeaders } from './request-tracing';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('passThroughHeaders: the caller trace context passed on while tracing is off', () => {
  it('passes a valid traceparent and its tracestate on unchanged', () => {
    const traceparent = `00-${TRACE}-${PARENT}-01`;
    expect(passThroughHeaders({ traceparent, tracestate: 'congo=t61rcWkgMzE' })).toEqual({
      traceparent,
      tracestate: 'congo=t61rcWkgMzE',
    });
  });

  it('accepts a later version with more fields (W3C: read the fields it knows)', () => {
    const traceparent = `01-${TRACE}-${PARENT}-01-extra`;
    expect(passThroughHeaders({ traceparent })).toEqual({ traceparent });
  });

  it.each([
    ['absent', undefined],
    ['version ff', `ff-${TRACE}-${PARENT}-01`],
    ['version 00 with extra fields', `00-${TRACE}-${PARENT}-01-extra`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`],
    ['an all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ['a short trace id', `00-${TRACE.slice(1)}-${PARENT}-01`],
    ['garbage', 'not-a-traceparent'],
  ])('drops a traceparent that is %s', (_case, traceparent) => {
    expect(passThroughHeaders({ traceparent, tracestate: 'a=b' })).toBeUndefined();
  });

  it.each([
    ['too long', `a=${'b'.repeat(600)}`],
    ['not printable', 'a=b\u0007'],
  ])('keeps the traceparent but drops a tracestate that is %s', (_case, tracestate) => {
    const traceparent = `00-${TRACE}-${PARENT}-01`;
    expect(passThroughHeaders({ traceparent, tracestate })).toEqual({ traceparent });
  });
});
