import { chromium } from '@playwright/test';
import { mkdir, readFile, writeFile } from 'node:fs/promises';

/**
 * `npx tsx scripts/make-icons.ts`: renders build/icon.svg into every icon electron-builder needs
 * (Linux build/icons/NxN.png, Windows build/icon.ico, macOS build/icon.icns), with Debian's Chromium.
 *
 * The outputs are committed; run this again only after changing the SVG.
 */
export const LINUX_ICON_SIZES = [16, 24, 32, 48, 64, 128, 256, 512, 1024] as const;
const ICO_SIZES = [16, 24, 32, 48, 64, 128, 256] as const;
/** icns element types holding PNG data, by pixel size. */
const ICNS_TYPES: readonly (readonly [string, number])[] = [
  ['icp4', 16],
  ['icp5', 32],
  ['icp6', 64],
  ['ic07', 128],
  ['ic08', 256],
  ['ic09', 512],
  ['ic10', 1024],
  ['ic11', 32],
  ['ic12', 64],
  ['ic13', 256],
  ['ic14', 512],
];

/** A Windows .ico holding PNG images (Vista and later read PNG entries). */
export function icoFromPngs(images: readonly (readonly [number, Buffer])[]): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt16LE(images.length, 4);
  const entries: Buffer[] = [];
  let offset = 6 + 16 * images.length;
  for (const [size, png] of images) {
    const entry = Buffer.alloc(16);
    entry.writeUInt8(size >= 256 ? 0 : size, 0);
    entry.writeUInt8(size >= 256 ? 0 : size, 1);
    entry.writeUInt16LE(1, 4);
    entry.writeUInt16LE(32, 6);
    entry.writeUInt32LE(png.length, 8);
    entry.writeUInt32LE(offset, 12);
    offset += png.length;
    entries.push(entry);
  }
  return Buffer.concat([header, ...entries, ...images.map(([, png]) => png)]);
}

/** A macOS .icns holding PNG elements. */
export function icnsFromPngs(elements: readonly (readonly [string, Buffer])[]): Buffer {
  const parts = elements.map(([type, png]) => {
    const head = Buffer.alloc(8);
    head.write(type, 0, 'latin1');
    head.writeUInt32BE(png.length + 8, 4);
    return Buffer.concat([head, png]);
  });
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'latin1');
  head.writeUInt32BE(body.length + 8, 4);
  return Buffer.concat([head, body]);
}

async function main(): Promise<void> {
  const svg = await readFile('build/icon.svg', 'utf8');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  const rendered = new Map<number, Buffer>();
  try {
    const page = await browser.newPage();
    for (const size of new Set([...LINUX_ICON_SIZES, ...ICO_SIZES, ...ICNS_TYPES.map(([, s]) => s)])) {
      await page.setViewportSize({ width: size, height: size });
      await page.setContent(
        `<html><body style="margin:0;background:transparent">${svg.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body></html>`,
      );
      rendered.set(size, await page.screenshot({ omitBackground: true, type: 'png' }));
    }
  } finally {
    await browser.close();
  }
  await mkdir('build/icons', { recursive: true });
  for (const size of LINUX_ICON_SIZES) await writeFile(`build/icons/${size}x${size}.png`, rendered.get(size)!);
  await writeFile('build/icon.ico', icoFromPngs(ICO_SIZES.map((size) => [size, rendered.get(size)!] as const)));
  await writeFile(
    'build/icon.icns',
    icnsFromPngs(ICNS_TYPES.map(([type, size]) => [type, rendered.get(size)!] as const)),
  );
  console.log('Wrote build/icons/*.png, build/icon.ico and build/icon.icns');
}

if (process.argv[1]?.endsWith('make-icons.ts')) await main();
