import { describeDetail } from '../diff';

describe('describeDetail', () => {
  it('shows the lines a data diff writes for people', () => {
    const detail = {
      summary: ['rows 2 → 3', 'columns added: c'],
      rows: { a: 2, b: 3 }
    };
    expect(describeDetail(detail)).toBe('rows 2 → 3\ncolumns added: c');
  });

  it('falls back to the fields of a detail without a summary', () => {
    expect(describeDetail({ rows: { a: 2, b: 3 } })).toBe('rows: 2 → 3');
  });
});
