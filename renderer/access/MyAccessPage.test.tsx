// @vitest-environment jsdom
import { afterEach, describe, expect, it } from 'vitest';
import { allByRole, byRole, click, perform, queryByRole, renderApp, type Rendered } from '../test/dom';
import { FakeClearance, ok } from '../test/fakeClearance';
import { entitlementsFixture } from '../test/fixtures';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

async function openMyAccess(fake = new FakeClearance()) {
  view = await renderApp(fake);
  await click(byRole(document.body, 'button', 'My access'));
  return { fake, page: document.querySelector<HTMLElement>('[data-testid="my-access"]') as HTMLElement };
}

function rowFor(page: HTMLElement, modelId: string): HTMLTableRowElement {
  return page.querySelector(`tr[data-model-id="${modelId}"]`) as HTMLTableRowElement;
}

describe('My access', () => {
  it('tabulates every listed model with its status, reason, rule and since', async () => {
    const { page } = await openMyAccess();
    expect(byRole(page, 'heading', 'My access')).toBeTruthy();
    const rows = [...page.querySelectorAll('tbody tr')].map((row) => row.getAttribute('data-model-id'));
    expect(rows).toEqual(['haiku-4', 'mythos-5', 'echo-demo', 'opus-lab']);
    const mythos = [...rowFor(page, 'mythos-5').cells].map((cell) => cell.textContent?.trim());
    expect(mythos[0]).toBe('Mythos 5');
    expect(mythos[1]).toBe('Restricted');
    expect(mythos[2]).toBe('Restricted by export-control directive');
    expect(mythos[3]).toBe('ec-2026-06-us-persons');
    expect(mythos[4]).toMatch(/2026/);
    expect(rowFor(page, 'haiku-4').cells[1]?.textContent?.trim()).toBe('Available');
    expect(rowFor(page, 'echo-demo').cells[0]?.textContent).toContain('Demo');
  });

  it('shows the document version, expiry, last refresh and live-update state', async () => {
    const { page } = await openMyAccess();
    const summary = byRole(page, 'region', 'Access document');
    expect(summary.textContent).toContain('4182');
    expect(summary.querySelector('time[datetime="2026-11-27T10:10:00Z"]')).not.toBeNull();
    expect(summary.querySelector('time[datetime="2026-11-27T10:00:00Z"]')).not.toBeNull();
    const live = page.querySelector('[data-testid="live-state"]');
    expect(live?.getAttribute('data-live')).toBe('connected');
    expect(live?.textContent).toContain('Live updates: Connected');
  });

  it('follows live-update changes and warns when offline, naming when access was last known', async () => {
    const { fake, page } = await openMyAccess();
    expect(page.querySelector('[data-testid="access-banner"]')).toBeNull();
    await perform(() => fake.setEntitlements({ ...entitlementsFixture, live: 'polling' }));
    expect(page.querySelector('[data-testid="live-state"]')?.textContent).toContain('Polling');
    await perform(() => fake.setEntitlements({ ...entitlementsFixture, live: 'offline' }));
    const banner = page.querySelector('[data-testid="access-banner"]');
    expect(banner?.textContent).toContain('You’re offline — Clearance last confirmed your access on');
    expect(banner?.textContent).toContain('No model is available until it can reach the gateway again');
    expect(page.querySelector('[data-testid="live-state"]')?.textContent).toContain('Offline');
  });

  it('warns when the document has expired even if the connection is up', async () => {
    const { fake, page } = await openMyAccess();
    await perform(() => fake.setEntitlements({ ...entitlementsFixture, status: 'stale' }));
    expect(page.querySelector('[data-testid="access-banner"]')?.textContent).toContain('could not be confirmed');
  });

  it('refreshes on demand and shows the refreshed document', async () => {
    const fake = new FakeClearance();
    fake.handle('refreshEntitlements', () => ok({ ...entitlementsFixture, ver: 4183 }));
    const { page } = await openMyAccess(fake);
    await click(byRole(page, 'button', 'Refresh'));
    expect(fake.callsTo('refreshEntitlements')).toHaveLength(1);
    expect(byRole(page, 'region', 'Access document').textContent).toContain('4183');
  });

  it('leaves hidden models out and offers Why? only for restricted ones', async () => {
    const { page } = await openMyAccess();
    expect(page.textContent).not.toContain('Secret X');
    expect(allByRole(page, 'button', /^Why is/).map((b) => b.getAttribute('aria-label'))).toEqual([
      'Why is Mythos 5 unavailable?',
      'Why is Opus Lab unavailable?',
    ]);
    expect(queryByRole(page, 'button', 'Why is Haiku 4 unavailable?')).toBeNull();
  });
});
