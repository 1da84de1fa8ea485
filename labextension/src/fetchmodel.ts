/**
 * The state a main-area view shares with its model: one fetch started when the
 * model is made, loading until it settles, then its data or the server's message.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { messageOf } from './model';

/** A view's model holding what one fetch brought back. */
export abstract class FetchModel<T> implements IDisposable {
  /** Start `fetch` at once; views render `isLoading` until it settles. */
  constructor(fetch: () => Promise<T>) {
    this._ready = fetch()
      .then(
        data => {
          this._data = data;
        },
        error => {
          this._error = messageOf(error);
        }
      )
      .then(() => {
        this._isLoading = false;
        if (!this._isDisposed) {
          this._changed.emit();
        }
      });
  }

  /** Emitted when the fetch settles, and whenever what the view shows changes. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Resolves when the fetch has settled, whether it worked or not. */
  get ready(): Promise<void> {
    return this._ready;
  }

  /** True until the fetch settles. */
  get isLoading(): boolean {
    return this._isLoading;
  }

  /** Why the fetch failed, as the server phrased it; null otherwise. */
  get error(): string | null {
    return this._error;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  /** What the fetch brought back; null while loading or after a failure. */
  protected get data(): T | null {
    return this._data;
  }

  protected readonly _changed = new Signal<this, void>(this);
  private _ready: Promise<void>;
  private _data: T | null = null;
  private _error: string | null = null;
  private _isLoading = true;
  private _isDisposed = false;
}
