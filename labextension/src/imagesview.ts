/**
 * Thumbnails of the images a run wrote; a click shows one at full size.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { FetchView } from './fetchview';
import { IPreviewItem, ImagesModel } from './imagesmodel';

/** The images of one run; owns its model. */
export class ImagesView extends FetchView<ImagesModel> {
  constructor(model: ImagesModel) {
    super(model, 'Loading the images…');
    this.addClass('nbtrack-images');
  }

  protected renderContent(): (Node | string)[] {
    const items = this.model.items;
    if (items.length === 0) {
      return [
        h(
          'p',
          { className: 'nbtrack-same' },
          'This run wrote no image (PNG, JPEG, GIF, WebP or SVG file).'
        )
      ];
    }
    const more = this.model.total - items.length;
    return [
      h(
        'div',
        { className: 'nbtrack-thumbs' },
        items.map(item => this._thumb(item))
      ),
      more > 0
        ? h('p', { className: 'nbtrack-hint' }, `${more} more not shown`)
        : ''
    ];
  }

  private _thumb(item: IPreviewItem): HTMLElement {
    const url = this.model.url(item.image.hash);
    const picture = url
      ? h('img', { src: url, alt: item.image.path, loading: 'lazy' })
      : h(
          'div',
          { className: 'nbtrack-thumb-missing' },
          item.missing ?? 'Loading…'
        );
    const figure = h(
      'figure',
      {
        className: 'nbtrack-thumb',
        title: `${item.image.path} (${item.image.media_type})`,
        'data-path': item.image.path,
        tabindex: url ? 0 : undefined
      },
      picture,
      h(
        'figcaption',
        {},
        item.folder
          ? h('span', { className: 'nbtrack-hint' }, `${item.folder}/`)
          : null,
        item.label
      )
    );
    if (url) {
      const enlarge = (): void => void enlargeImage(item.image.path, url);
      figure.addEventListener('click', enlarge);
      figure.addEventListener('keydown', event => {
        if (event.key === 'Enter' || event.key === ' ') {
          enlarge();
        }
      });
    }
    return figure;
  }
}

/** The image at full size (scrolling when larger than the window) in a dialog. */
export async function enlargeImage(path: string, url: string): Promise<void> {
  const body = new Widget({
    node: h(
      'div',
      { className: 'nbtrack-image-full' },
      h('img', { src: url, alt: path })
    )
  });
  await showDialog({
    title: path,
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
