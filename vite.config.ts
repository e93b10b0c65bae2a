import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The renderer is served from app://clearance in Electron and from loopback in the harness:
// relative asset paths work for both.
export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [react()],
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    sourcemap: true,
    target: 'chrome140',
  },
});
