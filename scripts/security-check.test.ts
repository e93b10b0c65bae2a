import { describe, expect, it } from 'vitest';
import { seriousFindings } from './security-check';

const header = 'issue,severity,confidence,file,location,sample,description,url';

describe('seriousFindings', () => {
  it('keeps HIGH and MEDIUM rows and drops LOW and INFORMATIONAL ones', () => {
    const csv = [
      header,
      'NODE_INTEGRATION_JS_CHECK,"HIGH","FIRM","electron/w.ts","1:1",x,y,z',
      'AUXCLICK_JS_CHECK,"MEDIUM","FIRM","electron/w.ts","2:1",x,y,z',
      'SANDBOX_JS_CHECK,"LOW","FIRM","electron/w.ts","3:1",x,y,z',
      'AVAILABLE_SECURITY_FIXES,"INFORMATIONAL","CERTAIN","N/A","0:0",x,y,z',
    ].join('\n');
    expect(seriousFindings(csv).map((row) => row.split(',')[0])).toEqual([
      'NODE_INTEGRATION_JS_CHECK',
      'AUXCLICK_JS_CHECK',
    ]);
  });

  it('lets a reviewed finding pass only for the file it was reviewed in', () => {
    const csv = [
      header,
      'PRELOAD_JS_CHECK,"MEDIUM","FIRM","electron/window.ts","1:1",x,y,z',
      'PRELOAD_JS_CHECK,"MEDIUM","FIRM","electron/other.ts","1:1",x,y,z',
    ].join('\n');
    const reviewed = [{ check: 'PRELOAD_JS_CHECK', file: 'electron/window.ts', why: 'reviewed' }];
    expect(seriousFindings(csv, reviewed)).toHaveLength(1);
    expect(seriousFindings(csv, reviewed)[0]).toContain('electron/other.ts');
  });
});
