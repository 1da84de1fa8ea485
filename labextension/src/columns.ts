/**
 * The body of the "Columns" dialog: one check box per parameter and metric.
 */
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { RunsModel } from './model';

/** Check boxes for the param and metric columns of the runs table. */
export class ColumnChooser extends Widget {
  constructor(model: RunsModel) {
    super();
    this.addClass('nbtrack-columns');
    this._params = this._group(
      'Parameters',
      model.paramKeys,
      model.visibleParams
    );
    this._metrics = this._group(
      'Metrics',
      model.metricKeys,
      model.visibleMetrics
    );
  }

  /** The parameters checked. */
  get params(): string[] {
    return checked(this._params);
  }

  /** The metrics checked. */
  get metrics(): string[] {
    return checked(this._metrics);
  }

  private _group(
    title: string,
    keys: string[],
    shown: string[]
  ): HTMLInputElement[] {
    const boxes = keys.map(key => {
      const box = h('input', { type: 'checkbox', value: key });
      box.checked = shown.includes(key);
      return box;
    });
    this.node.appendChild(
      h(
        'fieldset',
        { className: 'nbtrack-columns-group' },
        h('legend', {}, title),
        keys.length
          ? boxes.map(box =>
              h(
                'label',
                { className: 'nbtrack-columns-item' },
                box,
                ` ${box.value}`
              )
            )
          : h('span', { className: 'nbtrack-same' }, 'None recorded yet.')
      )
    );
    return boxes;
  }

  private _params: HTMLInputElement[];
  private _metrics: HTMLInputElement[];
}

function checked(boxes: HTMLInputElement[]): string[] {
  return boxes.filter(box => box.checked).map(box => box.value);
}
