import { FaultInjector, parseFault } from './fault-injection';
import { SandboxInputError } from './sandbox-input-error';

describe('parseFault', () => {
  it('keeps the known fields', () => {
    expect(parseFault({ mode: 'status_429', retryAfter: 0, count: 3 })).toEqual({
      mode: 'status_429',
      retryAfter: 0,
      count: 3,
    });
    expect(parseFault({ mode: 'slow', delayMs: 250 })).toEqual({ mode: 'slow', delayMs: 250 });
    expect(parseFault({ mode: 'expires_in', expiresIn: '20' })).toEqual({
      mode: 'expires_in',
      expiresIn: '20',
    });
    expect(parseFault({ mode: 'expires_in', expiresIn: null })).toEqual({
      mode: 'expires_in',
      expiresIn: null,
    });
  });

  it.each<[unknown, string]>([
    [null, 'fault must be a JSON object'],
    ['slow', 'fault must be a JSON object'],
    [{}, 'fault.mode must be one of'],
    [{ mode: 'slow', delayMs: 1.5 }, 'fault.delayMs must be an integer from 0 to 600000'],
    [{ mode: 'slow', delayMs: 600_001 }, 'fault.delayMs must be an integer from 0 to 600000'],
    [{ mode: 'status_503', retryAfter: '5' }, 'fault.retryAfter must be a non-negative integer'],
    [{ mode: 'html', count: -1 }, 'fault.count must be a positive integer'],
    [{ mode: 'html', times: 1 }, 'fault has an unknown field: times'],
    [{ mode: 'expires_in', expiresIn: 10n }, 'fault.expiresIn must be representable in JSON'],
  ])('refuses %j', (value, message) => {
    expect(() => parseFault(value)).toThrow(SandboxInputError);
    expect(() => parseFault(value)).toThrow(message);
  });
});

describe('FaultInjector', () => {
  it('gives nothing when no fault is set', () => {
    expect(new FaultInjector().take()).toBeUndefined();
  });

  it('applies a counted fault exactly count times', () => {
    const faults = new FaultInjector();
    faults.set({ mode: 'html', count: 2 });
    expect(faults.peek()).toEqual({ mode: 'html', count: 2, remaining: 2 });
    expect(faults.take()).toEqual({ mode: 'html', count: 2 });
    expect(faults.take()).toEqual({ mode: 'html', count: 2 });
    expect(faults.take()).toBeUndefined();
    expect(faults.peek()).toBeUndefined();
  });

  it('applies an uncounted fault until cleared', () => {
    const faults = new FaultInjector();
    faults.set({ mode: 'reset' });
    for (let i = 0; i < 5; i += 1) expect(faults.take()).toEqual({ mode: 'reset' });
    expect(faults.peek()).toEqual({ mode: 'reset' });
    faults.clear();
    expect(faults.take()).toBeUndefined();
  });

  it('replaces the previous fault and its count', () => {
    const faults = new FaultInjector();
    faults.set({ mode: 'html', count: 1 });
    faults.set({ mode: 'status_500' });
    faults.take();
    expect(faults.take()).toEqual({ mode: 'status_500' });
  });

  it('treats mode none as clear', () => {
    const faults = new FaultInjector();
    faults.set({ mode: 'html' });
    faults.set({ mode: 'none', count: 3 });
    expect(faults.take()).toBeUndefined();
  });
});
