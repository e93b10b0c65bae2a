import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

async function restrictedImportMessages(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer rules (STYLE.md)', () => {
  it("fails a deliberate import of 'electron' in renderer/", async () => {
    const messages = await restrictedImportMessages(
      'renderer/probe.ts',
      "import { ipcRenderer } from 'electron';\nexport const x = ipcRenderer;\n",
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/renderer is a web page/);
  });

  it('fails Node modules and main/ in renderer/', async () => {
    expect(
      await restrictedImportMessages(
        'renderer/probe.ts',
        "import { readFile } from 'node:fs';\nexport const x = readFile;\n",
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImportMessages(
        'renderer/probe.ts',
        "import { createServices } from '../main/services';\nexport const x = createServices;\n",
      ),
    ).toHaveLength(1);
  });

  it('lets the renderer import shared/', async () => {
    expect(
      await restrictedImportMessages(
        'renderer/probe.ts',
        "import { ipcCalls } from '../shared/ipc';\nexport const x = ipcCalls;\n",
      ),
    ).toEqual([]);
  });

  it('keeps shared/ free of our other layers and of Node', async () => {
    expect(
      await restrictedImportMessages(
        'shared/probe.ts',
        "import { Emitter } from '../main/events';\nexport const x = Emitter;\n",
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImportMessages('shared/probe.ts', "import { join } from 'node:path';\nexport const x = join;\n"),
    ).toHaveLength(1);
  });

  it("allows 'electron' only in main/electron/ and the preload", async () => {
    const code = "import { app } from 'electron';\nexport const x = app;\n";
    expect(await restrictedImportMessages('main/identity/probe.ts', code)).toHaveLength(1);
    expect(await restrictedImportMessages('gateway/probe.ts', code)).toHaveLength(1);
    expect(await restrictedImportMessages('main/electron/probe.ts', code)).toEqual([]);
    expect(await restrictedImportMessages('main/preload/probe.ts', code)).toEqual([]);
  });
});
