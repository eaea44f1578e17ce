import { InvalidPortSpecError, containsPort, coversAllPorts, formatPortRange, parsePortSpec, portRangesOf, withoutPort } from '../../shared/net/ports';

describe('port specs', () => {
  it('parses *, single ports and ranges', () => {
    expect(parsePortSpec('*')).toEqual([{ from: 0, to: 65535 }]);
    expect(parsePortSpec('22')).toEqual([{ from: 22, to: 22 }]);
    expect(parsePortSpec('20-30')).toEqual([{ from: 20, to: 30 }]);
  });

  it('rejects bad specs with a clear error', () => {
    for (const bad of ['', 'ssh', '30-20', '70000', '-1', '22-']) expect(() => parsePortSpec(bad)).toThrow(InvalidPortSpecError);
  });

  it('combines the singular and plural fields and reports bad entries instead of throwing', () => {
    const { ranges, invalid } = portRangesOf(undefined, ['80', '20-30', 'oops']);
    expect(containsPort(ranges, 22)).toBe(true);
    expect(containsPort(ranges, 80)).toBe(true);
    expect(containsPort(ranges, 31)).toBe(false);
    expect(invalid).toEqual(['oops']);
    expect(containsPort(portRangesOf('23-30', undefined).ranges, 22)).toBe(false);
  });

  it('knows when ranges cover every port, and can take one port out', () => {
    expect(coversAllPorts(parsePortSpec('0-100,101-65535'))).toBe(true);
    expect(coversAllPorts(parsePortSpec('1024-65535'))).toBe(false);
    expect(withoutPort(parsePortSpec('*'), 22).map(formatPortRange)).toEqual(['0-21', '23-65535']);
    expect(withoutPort(parsePortSpec('22'), 22)).toEqual([]);
    expect(withoutPort(parsePortSpec('20-22,443'), 22).map(formatPortRange)).toEqual(['20-21', '443']);
  });
});
