/**
 * The images of a run: previews in path order, those without kept bytes said so,
 * bytes fetched through api.ts into object URLs that die with the model.
 */
import * as api from '../api';
import { IRunImage } from '../api';
import { ImagesModel, previewItems } from '../imagesmodel';

jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  fetchImages: jest.fn(),
  fetchImageBlob: jest.fn()
}));
const fetchImages = jest.mocked(api.fetchImages);
const fetchImageBlob = jest.mocked(api.fetchImageBlob);

function image(path: string, hash: string, cached = true): IRunImage {
  return {
    path,
    hash,
    size: 100,
    media_type: path.endsWith('.svg') ? 'image/svg+xml' : 'image/png',
    cached
  };
}

const IMAGES = [
  image('plots/roc.svg', 'xxh128:02'),
  image('loss.png', 'xxh128:01'),
  image('plots/figs/a.png', 'xxh128:03', false)
];

describe('previewItems', () => {
  it('sorts by path, splits folder and name, and says why a preview is missing', () => {
    const items = previewItems(IMAGES);
    expect(items.map(i => [i.folder, i.label, i.missing !== null])).toEqual([
      ['', 'loss.png', false],
      ['plots/figs', 'a.png', true],
      ['plots', 'roc.svg', false]
    ]);
    expect(items[1].missing).toContain('--no-cache');
  });
});

describe('ImagesModel', () => {
  const created: string[] = [];
  const revoked: string[] = [];
  beforeAll(() => {
    // jsdom has no object URLs: count what the model makes and releases.
    URL.createObjectURL = (blob: Blob): string => {
      const url = `blob:${created.length}:${blob.size}`;
      created.push(url);
      return url;
    };
    URL.revokeObjectURL = (url: string): void => void revoked.push(url);
  });
  beforeEach(() => {
    jest.resetAllMocks();
    created.length = 0;
    revoked.length = 0;
  });

  it('fetches the bytes of every kept image once and releases them on dispose', async () => {
    fetchImages.mockResolvedValue({ run_id: 'r', images: IMAGES, total: 3 });
    fetchImageBlob.mockImplementation(async (_path, _run, hash) =>
      hash === 'xxh128:02'
        ? Promise.reject(new Error('not a svg'))
        : new Blob(['png'])
    );
    const model = new ImagesModel({ path: 'nb.ipynb', runId: 'r' });
    await model.ready;
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (
          model.items.every(i => i.missing !== null || model.url(i.image.hash))
        ) {
          resolve();
        } else {
          setTimeout(check, 5);
        }
      };
      check();
    });
    expect(fetchImageBlob.mock.calls.map(call => call[2]).sort()).toEqual([
      'xxh128:01',
      'xxh128:02'
    ]);
    expect(model.url('xxh128:01')).toBe('blob:0:3');
    expect(model.url('xxh128:03')).toBeNull();
    const svg = model.items.find(i => i.label === 'roc.svg');
    expect(svg?.missing).toBe('not a svg');
    expect(model.total).toBe(3);
    model.dispose();
    expect(revoked).toEqual(['blob:0:3']);
  });
});
