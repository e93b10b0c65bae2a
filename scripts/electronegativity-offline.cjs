// Preloaded into Electronegativity by scripts/security-check.ts. The tool fetches translations and
// Electron release notes with `got`; the build machines have no internet, and on Node 24 got's retry
// after the timeout throws outside the promise and kills the process. This answers every such request
// with an immediate network error, which the tool already handles (it falls back to its bundled data).
'use strict';
const Module = process.getBuiltinModule('node:module');
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === 'got') {
    const offline = () => Promise.reject(new Error('offline: Electronegativity network access is disabled'));
    return Object.assign(offline, { default: offline, get: offline, head: offline });
  }
  return load.call(this, request, parent, isMain);
};
