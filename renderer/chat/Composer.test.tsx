// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { byRole, click, press, queryByRole, render, typeInto, type Rendered } from '../test/dom';
import { Composer, type ComposerProps } from './Composer';

let view: Rendered | undefined;

afterEach(async () => {
  await view?.unmount();
  view = undefined;
});

async function renderComposer(props: Partial<ComposerProps> = {}) {
  const onSend = vi.fn(async () => true);
  const onStop = vi.fn();
  view = await render(
    <Composer
      onSend={onSend}
      onStop={onStop}
      streaming={false}
      sending={false}
      placeholder="Message Haiku 4…"
      {...props}
    />,
  );
  const field = byRole(view.container, 'textbox', 'Message') as HTMLTextAreaElement;
  return { field, onSend: props.onSend ?? onSend, onStop: props.onStop ?? onStop, container: view.container };
}

describe('Composer', () => {
  it('sends on Enter and clears the field', async () => {
    const { field, onSend } = await renderComposer();
    await typeInto(field, 'Explain attention');
    const enter = await press(field, 'Enter');
    expect(enter.defaultPrevented).toBe(true);
    expect(onSend).toHaveBeenCalledWith('Explain attention');
    expect(field.value).toBe('');
  });

  it('keeps Shift+Enter as a new line and does not send', async () => {
    const { field, onSend } = await renderComposer();
    await typeInto(field, 'line one');
    const shiftEnter = await press(field, 'Enter', { shiftKey: true });
    expect(shiftEnter.defaultPrevented).toBe(false);
    expect(onSend).not.toHaveBeenCalled();
  });

  it('does not send blank text', async () => {
    const { field, onSend, container } = await renderComposer();
    await typeInto(field, '   ');
    await press(field, 'Enter');
    expect(onSend).not.toHaveBeenCalled();
    expect((byRole(container, 'button', 'Send message') as HTMLButtonElement).disabled).toBe(true);
  });

  it('puts the text back when the send fails', async () => {
    const onSend = vi.fn(async () => false);
    const { field } = await renderComposer({ onSend });
    await typeInto(field, 'keep me');
    await press(field, 'Enter');
    expect(onSend).toHaveBeenCalled();
    expect(field.value).toBe('keep me');
  });

  it('stops a streaming reply on Escape and offers a Stop button instead of Send', async () => {
    const { field, onStop, onSend, container } = await renderComposer({ streaming: true });
    const escape = await press(field, 'Escape');
    expect(escape.defaultPrevented).toBe(true);
    expect(onStop).toHaveBeenCalledTimes(1);
    expect(queryByRole(container, 'button', 'Send message')).toBeNull();
    await click(byRole(container, 'button', 'Stop generating'));
    expect(onStop).toHaveBeenCalledTimes(2);
    await typeInto(field, 'next');
    await press(field, 'Enter');
    expect(onSend).not.toHaveBeenCalled();
  });

  it('leaves Escape alone when nothing is streaming', async () => {
    const { field, onStop } = await renderComposer();
    const escape = await press(field, 'Escape');
    expect(escape.defaultPrevented).toBe(false);
    expect(onStop).not.toHaveBeenCalled();
  });

  it('is disabled and described by the lock reason when locked', async () => {
    view = await render(
      <>
        <p id="why-locked">Mythos 5 is unavailable</p>
        <Composer
          onSend={vi.fn(async () => true)}
          onStop={vi.fn()}
          streaming={false}
          sending={false}
          placeholder="x"
          lockedBy="why-locked"
        />
      </>,
    );
    const field = byRole(view.container, 'textbox', 'Message') as HTMLTextAreaElement;
    expect(field.disabled).toBe(true);
    expect(field.getAttribute('aria-describedby')).toContain('why-locked');
  });
});
