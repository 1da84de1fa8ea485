/**
 * The images a run wrote: the list from the server, then each preview's bytes
 * fetched through the authenticated API and shown from an object URL (an SVG in an
 * `<img>` runs no script), a few at a time, released with the model.
 */
import { IRunImage, IRunImages, fetchImageBlob, fetchImages } from './api';
import { FetchModel } from './fetchmodel';
import { messageOf } from './model';

/** One thumbnail: what it shows and why it cannot, when it cannot. */
export interface IPreviewItem {
  image: IRunImage;
  /** The file name. */
  label: string;
  /** The folder it was written in ('' at the project root). */
  folder: string;
  /** Why no preview: its bytes were not kept, or could not be read. */
  missing: string | null;
}

/** Previews in path order, those without kept bytes said so. */
export function previewItems(images: IRunImage[]): IPreviewItem[] {
  return [...images]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map(image => {
      const cut = image.path.lastIndexOf('/');
      return {
        image,
        label: image.path.slice(cut + 1),
        folder: cut < 0 ? '' : image.path.slice(0, cut),
        missing: image.cached
          ? null
          : 'bytes not kept (written with --no-cache, or removed by gc)'
      };
    });
}

/** How many previews load at once. */
const PARALLEL = 4;

export namespace ImagesModel {
  export interface IOptions {
    path: string;
    runId: string;
  }
}

/** The images of one run and their previews' object URLs. */
export class ImagesModel extends FetchModel<IRunImages> {
  constructor(options: ImagesModel.IOptions) {
    super(() => fetchImages(options.path, options.runId));
    this._path = options.path;
    this._runId = options.runId;
    void this.ready.then(() => this._loadAll());
  }

  /** The previews in path order (empty until loaded). */
  get items(): IPreviewItem[] {
    const items = previewItems(this.data?.images ?? []);
    for (const item of items) {
      item.missing = item.missing ?? this._failed.get(item.image.hash) ?? null;
    }
    return items;
  }

  /** How many images the run wrote (more than listed past the server's limit). */
  get total(): number {
    return this.data?.total ?? 0;
  }

  /** The object URL of an image's bytes once fetched, else null. */
  url(hash: string): string | null {
    return this._urls.get(hash) ?? null;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    for (const url of this._urls.values()) {
      URL.revokeObjectURL(url);
    }
    this._urls.clear();
    super.dispose();
  }

  private async _loadAll(): Promise<void> {
    const queue = previewItems(this.data?.images ?? []).filter(
      item => item.missing === null
    );
    const worker = async (): Promise<void> => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        await this._load(item.image);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  }

  private async _load(image: IRunImage): Promise<void> {
    if (this._urls.has(image.hash) || this.isDisposed) {
      return;
    }
    try {
      const blob = await fetchImageBlob(this._path, this._runId, image.hash);
      if (this.isDisposed) {
        return;
      }
      this._urls.set(image.hash, URL.createObjectURL(blob));
    } catch (error) {
      this._failed.set(image.hash, messageOf(error));
    }
    if (!this.isDisposed) {
      this._changed.emit();
    }
  }

  private _path: string;
  private _runId: string;
  private _urls = new Map<string, string>();
  private _failed = new Map<string, string>();
}
