// The Teams app package: a manifest Teams accepts the shape of, and icons of the sizes it demands.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

const dir = join(__dirname, '..', '..', 'appPackage');

function pngInfo(file: string) {
  const buf = readFileSync(join(dir, file));
  expect(buf.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  const idat = buf.indexOf('IDAT');
  const pixels = inflateSync(buf.subarray(idat + 4, idat + 4 + buf.readUInt32BE(idat - 4)));
  return { width, height, colorType: buf[25], pixels };
}

test('manifest: the bot id is a placeholder, the bot works in channels, the icons are named', () => {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  expect(manifest.bots).toHaveLength(1);
  expect(manifest.bots[0].botId).toBe('${{BOT_ID}}');
  expect(manifest.bots[0].scopes).toContain('team');
  expect(manifest.bots[0].commandLists[0].commands.map((c: { title: string }) => c.title)).toEqual(['subscribe', 'unsubscribe', 'status', 'help']);
  expect(manifest.icons).toEqual({ color: 'color.png', outline: 'outline.png' });
  expect(manifest.name.short.length).toBeLessThanOrEqual(30);
  expect(manifest.description.short.length).toBeLessThanOrEqual(80);
  expect(manifest.description.full.length).toBeLessThanOrEqual(4000);
});

test('icons: color 192x192, outline 32x32 white on transparent', () => {
  const color = pngInfo('color.png');
  expect([color.width, color.height]).toEqual([192, 192]);
  const outline = pngInfo('outline.png');
  expect([outline.width, outline.height, outline.colorType]).toEqual([32, 32, 6]);
  // Every pixel of the outline is either fully transparent or opaque white.
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const o = y * (32 * 4 + 1) + 1 + x * 4;
      const [r, g, b, a] = outline.pixels.subarray(o, o + 4);
      expect(a === 0 || (r === 255 && g === 255 && b === 255 && a === 255)).toBe(true);
    }
  }
});
