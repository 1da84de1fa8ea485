/**
 * A main-area widget showing a FetchModel: a loading line until the fetch
 * settles, then the server's message, or what the subclass renders.
 */
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { FetchModel } from './fetchmodel';

/** Renders its model whenever it changes; owns it and disposes it with itself. */
export abstract class FetchView<M extends FetchModel<unknown>> extends Widget {
  constructor(model: M, loadingText: string) {
    super();
    this.model = model;
    this._loadingText = loadingText;
    this.node.tabIndex = 0;
    model.changed.connect(this.render, this);
    this.render();
  }

  readonly model: M;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }

  render(): void {
    if (this.model.isLoading) {
      this.node.textContent = this._loadingText;
      return;
    }
    if (this.model.error !== null) {
      this.node.replaceChildren(
        h(
          'div',
          { className: 'nbtrack-error', role: 'alert' },
          this.model.error
        )
      );
      return;
    }
    this.node.replaceChildren(...this.renderContent());
  }

  /** What the loaded model shows; called only once the fetch worked. */
  protected abstract renderContent(): (Node | string)[];

  private _loadingText: string;
}
