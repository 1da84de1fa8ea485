/**
 * The Runs tab's table grouped by notebook run or sweep: which runs go
 * together, what a group row shows for params and metrics, which rows show.
 */
import { IRunSummary } from '../api';
import { summaryRun } from './fixtures';
import {
  GroupSummaries,
  constantParam,
  groupTitle,
  groupedRows,
  summarise,
  tableGroups
} from '../groupmodel';

let counter = 0;

function run(fields: Partial<IRunSummary>): IRunSummary {
  counter += 1;
  return summaryRun(String(counter).padStart(32, '0'), {
    started_at: `2026-01-01T10:${String(counter % 60).padStart(2, '0')}:00Z`,
    ...fields
  });
}

/** Two sweep points (notebook runs p1, p2 of sweep s1) with two cell runs each, a run of p3 (no sweep), one interactive run; newest first. */
function sweepRuns(): IRunSummary[] {
  return [
    run({
      parent_id: 'p2',
      started_at: '2026-01-01T10:06:00Z',
      params: { lr: 0.01, seed: 0 },
      metrics: { loss: 1 }
    }),
    run({
      parent_id: 'p2',
      started_at: '2026-01-01T10:05:00Z',
      params: { lr: 0.01, seed: 0 },
      metrics: { acc: 0.9 }
    }),
    run({
      parent_id: 'p1',
      started_at: '2026-01-01T10:01:00Z',
      params: { lr: 0.1, seed: 0 },
      metrics: { acc: 0.6 }
    }),
    run({
      parent_id: 'p1',
      started_at: '2026-01-01T10:00:00Z',
      params: { lr: 0.1, seed: 1 },
      metrics: { acc: 0.7 }
    }),
    run({
      parent_id: 'p3',
      started_at: '2026-01-01T09:30:00Z',
      metrics: { acc: 0.5 }
    }),
    run({
      parent_id: null,
      started_at: '2026-01-01T09:00:00Z',
      metrics: { acc: 'NaN' }
    })
  ];
}

const SWEEPS = new Map([
  ['p1', 's1'],
  ['p2', 's1']
]);
const sweepOf = (id: string): string | null => SWEEPS.get(id) ?? null;

describe('runs grouped under their notebook run', () => {
  it('keep the order of the table (newest group first), runs outside any in their own group', () => {
    const groups = tableGroups(sweepRuns(), 'parent');
    expect(groups.map(g => [g.id, g.runs.length])).toEqual([
      ['p2', 2],
      ['p1', 2],
      ['p3', 1],
      [null, 1]
    ]);
    expect(groups.map(groupTitle)).toEqual([
      'Notebook run p2',
      'Notebook run p1',
      'Notebook run p3',
      'Interactive runs'
    ]);
    expect(groups[0].latest).toBe('2026-01-01T10:06:00Z');
  });

  it("summarise every metric: min, max and the newest run's value", () => {
    const [p2, p1, , interactive] = tableGroups(sweepRuns(), 'parent');
    expect(summarise(p1.runs, 'acc')).toEqual({
      min: 0.6,
      max: 0.7,
      last: 0.6,
      count: 2
    });
    // p2's newest run logged no acc: the last is the newest that did
    expect(summarise(p2.runs, 'acc')).toEqual({
      min: 0.9,
      max: 0.9,
      last: 0.9,
      count: 1
    });
    // A group without a finite value has no summary rather than NaN
    expect(summarise(interactive.runs, 'acc')).toBeNull();
  });

  it('show the params that are constant within the group, and nothing for those that vary', () => {
    const [p2, p1] = tableGroups(sweepRuns(), 'parent');
    expect(constantParam(p2.runs, 'lr')).toBe(0.01);
    expect(constantParam(p1.runs, 'lr')).toBe(0.1);
    expect(constantParam(p1.runs, 'seed')).toBeUndefined();
    expect(constantParam(p1.runs, 'depth')).toBeUndefined();
    const summaries = new GroupSummaries();
    expect(summaries.param(p1, 'lr')).toBe(0.1);
    expect(summaries.metric(p1, 'acc')?.max).toBe(0.7);
  });

  it('put a notebook run listed with "All runs" in its own group, with its cell runs', () => {
    const runs = sweepRuns();
    const notebook = run({ run_id: 'p1', kind: 'notebook', name: 'nb' });
    const groups = tableGroups([notebook, ...runs], 'parent');
    expect(groups[0].id).toBe('p1');
    expect(groups[0].runs.map(r => r.run_id)).toContain('p1');
    expect(groups[0].runs).toHaveLength(3);
  });
});

describe('runs grouped under their sweep', () => {
  it('gather the cell runs of every notebook run of a sweep; the rest are not in a sweep', () => {
    const groups = tableGroups(sweepRuns(), 'sweep', sweepOf);
    expect(groups.map(g => [g.key, g.runs.length])).toEqual([
      ['sweep:s1', 4],
      ['sweep:', 2]
    ]);
    expect(groups.map(groupTitle)).toEqual(['Sweep s1', 'Not in a sweep']);
    expect(summarise(groups[0].runs, 'acc')).toMatchObject({
      min: 0.6,
      max: 0.9,
      last: 0.9
    });
    expect(constantParam(groups[0].runs, 'lr')).toBeUndefined();
  });

  it("read a notebook run's own sweep tag", () => {
    const notebook = run({ kind: 'notebook', tags: { sweep: 's9' } });
    expect(tableGroups([notebook], 'sweep')[0].id).toBe('s9');
  });
});

describe('the rows of the grouped table', () => {
  it('are the groups, with the runs of the open ones under them', () => {
    const groups = tableGroups(sweepRuns(), 'parent');
    const closed = groupedRows(groups, new Set());
    expect(closed.map(r => r.type)).toEqual([
      'group',
      'group',
      'group',
      'group'
    ]);
    const open = groupedRows(groups, new Set(['parent:p1']));
    expect(
      open.map(r => (r.type === 'group' ? `group ${r.group.id}` : 'run'))
    ).toEqual(['group p2', 'group p1', 'run', 'run', 'group p3', 'group null']);
    expect(open[1]).toMatchObject({ type: 'group', expanded: true });
  });

  it('list every run of 20,000 under 100 open groups', () => {
    const many = Array.from({ length: 20_000 }, (_, i) =>
      run({ parent_id: `p${i % 100}`, metrics: { acc: i } })
    );
    const groups = tableGroups(many, 'parent');
    const rows = groupedRows(groups, new Set(groups.map(g => g.key)));
    const summaries = new GroupSummaries();
    groups.forEach(g => summaries.metric(g, 'acc'));
    expect(groups).toHaveLength(100);
    expect(rows).toHaveLength(20_100);
    expect(summaries.metric(groups[0], 'acc')).toMatchObject({
      min: 0,
      max: 19_900,
      count: 200
    });
  });
});
