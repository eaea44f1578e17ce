// Writes the two Teams app icons as valid PNGs with zlib only (no image libraries, no downloads):
// color.png 192x192 (a shield on a blue field) and outline.png 32x32 (white shield, transparent).
// Run: node appPackage/makeIcons.js
const { deflateSync } = require('node:zlib');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** RGBA pixels from pixel(x, y) → [r, g, b, a]. */
function png(size, pixel) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) raw.set(pixel(x, y), y * (size * 4 + 1) + 1 + x * 4);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
/** A shield: straight sides for the top 55 %, then narrowing to a point; u, v in 0..1. */
function inShield(u, v) {
  if (v < 0.12 || v > 0.9) return false;
  const half = v < 0.55 ? 0.32 : 0.32 * (1 - (v - 0.55) / 0.35);
  return Math.abs(u - 0.5) <= half;
}
const color = png(192, (x, y) => (inShield(x / 192, y / 192) ? [255, 255, 255, 255] : [0, 120, 212, 255]));
const outline = png(32, (x, y) => {
  const inside = inShield((x + 0.5) / 32, (y + 0.5) / 32);
  const inner = inShield(0.5 + ((x + 0.5) / 32 - 0.5) * 1.3, 0.12 + ((y + 0.5) / 32 - 0.16) * 1.3);
  return inside && !inner ? [255, 255, 255, 255] : [0, 0, 0, 0];
});
writeFileSync(join(__dirname, 'color.png'), color);
writeFileSync(join(__dirname, 'outline.png'), outline);
