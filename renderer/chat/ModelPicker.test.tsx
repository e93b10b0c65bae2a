// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listedModels } from '../state/access';
import { accessibleName, allByRole, byRole, click, press, render, type Rendered } from '../test/dom';
import { entitlementsFixture } from '../test/fixtures';
import { ModelPicker } from './ModelPicker';

const models = listedModels(entitlementsFixture);
let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

async function renderPicker(value = 'haiku-4') {
  const onSelect = vi.fn();
  const onExplain = vi.fn();
  view = await render(<ModelPicker models={models} value={value} onSelect={onSelect} onExplain={onExplain} />);
  const combobox = byRole(view.container, 'combobox', 'Model');
  return { combobox, onSelect, onExplain, container: view.container };
}

function option(container: HTMLElement, modelId: string): HTMLElement {
  const found = container.querySelector<HTMLElement>(`[role="option"][data-model-id="${modelId}"]`);
  if (!found) throw new Error(`no option for ${modelId}`);
  return found;
}

describe('ModelPicker', () => {
  it('lists every model except hidden ones, labelling demo models', async () => {
    const { combobox, container } = await renderPicker();
    await click(combobox);
    const names = allByRole(container, 'option').map((element) => element.dataset.modelId);
    expect(names).toEqual(['haiku-4', 'mythos-5', 'echo-demo', 'opus-lab']);
    expect(option(container, 'echo-demo').textContent).toContain('Demo');
    expect(combobox.getAttribute('aria-expanded')).toBe('true');
  });

  it('marks denied models aria-disabled with the reason in their accessible name', async () => {
    const { combobox, container } = await renderPicker();
    await click(combobox);
    const mythos = option(container, 'mythos-5');
    expect(mythos.getAttribute('aria-disabled')).toBe('true');
    expect(accessibleName(mythos)).toBe('Mythos 5, unavailable: Restricted by export-control directive');
    expect(mythos.querySelector('.icon')).not.toBeNull();
    // Without a policy title, the reason's standard title is used.
    expect(accessibleName(option(container, 'opus-lab'))).toContain('Hardware-backed device key required');
    expect(option(container, 'haiku-4').getAttribute('aria-disabled')).toBeNull();
  });

  it('does not select a denied model when it is clicked', async () => {
    const { combobox, container, onSelect, onExplain } = await renderPicker();
    await click(combobox);
    await click(option(container, 'mythos-5'));
    expect(onSelect).not.toHaveBeenCalled();
    expect(onExplain).not.toHaveBeenCalled();
    expect(combobox.getAttribute('aria-expanded')).toBe('true');
  });

  it('lets the arrow keys reach a denied model but Enter explains instead of selecting it', async () => {
    const { combobox, container, onSelect, onExplain } = await renderPicker();
    await press(combobox, 'ArrowDown');
    expect(combobox.getAttribute('aria-activedescendant')).toBe(option(container, 'haiku-4').id);
    await press(combobox, 'ArrowDown');
    expect(combobox.getAttribute('aria-activedescendant')).toBe(option(container, 'mythos-5').id);
    await press(combobox, 'Enter');
    expect(onSelect).not.toHaveBeenCalled();
    expect(onExplain).toHaveBeenCalledWith('mythos-5');
    expect(combobox.getAttribute('aria-expanded')).toBe('false');
  });

  it('never selects a denied model with Space either', async () => {
    const { combobox, onSelect } = await renderPicker();
    await press(combobox, 'ArrowDown');
    await press(combobox, 'End');
    await press(combobox, ' ');
    expect(onSelect).not.toHaveBeenCalled();
  });

  it('selects an allowed model by keyboard and by click', async () => {
    const { combobox, container, onSelect } = await renderPicker();
    await press(combobox, 'ArrowDown');
    await press(combobox, 'ArrowDown');
    await press(combobox, 'ArrowDown');
    await press(combobox, 'Enter');
    expect(onSelect).toHaveBeenLastCalledWith('echo-demo');
    await click(combobox);
    await click(option(container, 'haiku-4'));
    expect(onSelect).toHaveBeenLastCalledWith('haiku-4');
  });

  it('opens the explanation from a denied model’s Why? control', async () => {
    const { combobox, container, onExplain, onSelect } = await renderPicker();
    await click(combobox);
    const why = container.querySelector('[data-testid="why-mythos-5"]');
    expect(why?.textContent).toBe('Why?');
    await click(why as Element);
    expect(onExplain).toHaveBeenCalledWith('mythos-5');
    expect(onSelect).not.toHaveBeenCalled();
  });

  it('closes on Escape without choosing, and marks the event handled', async () => {
    const { combobox, onSelect } = await renderPicker();
    await press(combobox, 'ArrowDown');
    const escape = await press(combobox, 'Escape');
    expect(escape.defaultPrevented).toBe(true);
    expect(combobox.getAttribute('aria-expanded')).toBe('false');
    expect(onSelect).not.toHaveBeenCalled();
  });

  it('shows the selected model as the combobox value', async () => {
    const { combobox } = await renderPicker('echo-demo');
    expect(combobox.textContent).toContain('Echo');
    expect(combobox.textContent).toContain('Demo');
  });
});
