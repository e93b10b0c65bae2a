import type { DownloadFile } from './state/store';

/**
 * Saves a file through the browser's own download (the harness path of export).
 *
 * The Electron shell saves through a dialog in main instead and answers with `savedTo`.
 */
export function downloadFile(file: DownloadFile): void {
  const url = URL.createObjectURL(new Blob([file.content], { type: `${file.mimeType};charset=utf-8` }));
  const link = document.createElement('a');
  link.href = url;
  link.download = file.fileName;
  link.rel = 'noopener';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/** Copies text with the async clipboard API (allowed on app:// and loopback, both secure contexts). */
export async function writeClipboard(text: string): Promise<void> {
  if (!navigator.clipboard) throw new Error('The clipboard is not available.');
  await navigator.clipboard.writeText(text);
}
