/**
 * The panel prints numbers as the CLI does: both test suites read the same
 * fixture (tests/fixtures/number_format.json).
 */
import * as fs from 'fs';
import * as path from 'path';

import { formatNumber, formatValue } from '../format';

interface IFixture {
  rule: string;
  cases: [number, string][];
}

const fixture: IFixture = JSON.parse(
  fs.readFileSync(
    path.join(
      __dirname,
      '..',
      '..',
      '..',
      'tests',
      'fixtures',
      'number_format.json'
    ),
    'utf-8'
  )
);

describe('the shared number format', () => {
  it('has cases to check', () => {
    expect(fixture.cases.length).toBeGreaterThan(10);
  });

  it.each(fixture.cases)('prints %p as %p', (value, expected) => {
    expect(formatNumber(value)).toBe(expected);
  });

  it('prints the non-finite floats as the CLI does', () => {
    expect(formatNumber(NaN)).toBe('NaN');
    expect(formatNumber(Infinity)).toBe('inf');
    expect(formatNumber(-Infinity)).toBe('-inf');
    // The server sends them as JSON strings.
    expect(formatValue('Infinity')).toBe('inf');
    expect(formatValue('-Infinity')).toBe('-inf');
    expect(formatValue('NaN')).toBe('NaN');
  });

  it('prints the small learning rate the issue saw as 0.0001, not 1.000e-4', () => {
    expect(formatValue(0.0001)).toBe('0.0001');
  });
});
