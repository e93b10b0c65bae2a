/** The js-yaml functions the scripts use (js-yaml ships no types; it comes with electron-builder). */
declare module 'js-yaml' {
  export function load(text: string): unknown;
  export function dump(value: unknown): string;
}
