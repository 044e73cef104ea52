#!/usr/bin/env node
// make-icons.js — draw the toolbar icons, one per tab state and size, with
// node built-ins only (a hand-written PNG encoder over zlib), so the icons are
// reproducible and the repository needs no image tool:
//     node plugin/tools/make-icons.js [OUTDIR]   (default plugin/extension/icons)
// Every state has its own colour AND its own glyph, so the states stay distinct
// for people who do not see the colour difference.
import { deflateSync } from 'node:zlib';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ICON_SIZES, STATE_STYLE } from '../extension/state.js';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

// encodePng(width, height, rgba) — 8-bit RGBA, no interlace, filter 0 rows.
export function encodePng(w, h, rgba) {
  const raw = Buffer.alloc((w * 4 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 4 + 1)] = 0;
    rgba.copy(raw, y * (w * 4 + 1) + 1, y * w * 4, (y + 1) * w * 4);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function segDist(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// Glyphs in unit coordinates (y down): polylines and dots.
function glyph(name) {
  const arc = [];
  for (let a = 160; a >= -60; a -= 10) {
    const r = (a * Math.PI) / 180;
    arc.push([0.5 + 0.14 * Math.cos(r), 0.38 - 0.14 * Math.sin(r)]);
  }
  arc.push([0.5, 0.55], [0.5, 0.6]);
  return {
    check: { lines: [[[0.28, 0.52], [0.44, 0.68], [0.73, 0.35]]] },
    delta: { lines: [[[0.5, 0.27], [0.75, 0.70], [0.25, 0.70], [0.5, 0.27]]] },
    cross: { lines: [[[0.33, 0.33], [0.67, 0.67]], [[0.67, 0.33], [0.33, 0.67]]] },
    question: { lines: [arc], dots: [[0.5, 0.75]] },
    bang: { lines: [[[0.5, 0.26], [0.5, 0.58]]], dots: [[0.5, 0.75]] },
    dash: { lines: [[[0.31, 0.5], [0.69, 0.5]]] },
    dots: { dots: [[0.3, 0.5], [0.5, 0.5], [0.7, 0.5]] },
    ring: {},
  }[name];
}

function hex(c) {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

export function drawIcon(size, style) {
  const g = glyph(style.glyph);
  const fill = hex(style.color);
  const stroke = size <= 16 ? 0.085 : size <= 32 ? 0.07 : 0.06; // half-width
  const dotR = stroke * 1.25;
  const SS = 5;
  const out = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let inDisc = 0, inGlyph = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const px = (x + (sx + 0.5) / SS) / size;
          const py = (y + (sy + 0.5) / SS) / size;
          const r = Math.hypot(px - 0.5, py - 0.5);
          const disc = style.glyph === 'ring' ? r <= 0.47 && r >= 0.33 : r <= 0.47;
          if (!disc) continue;
          inDisc++;
          let hit = false;
          for (const line of g.lines || [])
            for (let i = 0; i + 1 < line.length && !hit; i++)
              if (segDist(px, py, line[i], line[i + 1]) <= stroke) hit = true;
          for (const [dx, dy] of g.dots || [])
            if (!hit && Math.hypot(px - dx, py - dy) <= dotR) hit = true;
          if (hit) inGlyph++;
        }
      }
      const n = SS * SS;
      const a = inDisc / n;
      const w = inDisc ? inGlyph / inDisc : 0; // share of the disc that is glyph
      const o = (y * size + x) * 4;
      for (let i = 0; i < 3; i++) out[o + i] = Math.round(fill[i] * (1 - w) + 255 * w);
      out[o + 3] = Math.round(255 * a);
    }
  }
  return encodePng(size, size, out);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const here = dirname(fileURLToPath(import.meta.url));
  const outDir = process.argv[2] || join(here, '..', 'extension', 'icons');
  mkdirSync(outDir, { recursive: true });
  for (const [state, style] of Object.entries(STATE_STYLE))
    for (const size of ICON_SIZES)
      writeFileSync(join(outDir, `${state}-${size}.png`), drawIcon(size, style));
}
