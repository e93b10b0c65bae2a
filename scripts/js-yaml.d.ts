/** The one js-yaml function the security check uses (js-yaml ships no types; it comes with electron-builder). */
declare module 'js-yaml' {
  export function load(text: string): unknown;
}
