import { Disclosure } from '../components/Disclosure';
import { ChevronDownIcon, DownloadIcon } from '../components/icons';
import { useActions } from '../state/context';

/** Export the open conversation as Markdown or JSON (a save dialog in the app, a download in the harness). */
export function ExportMenu() {
  const { exportConversation } = useActions();
  return (
    <Disclosure
      testId="export-menu"
      buttonClassName="button button-ghost"
      panelClassName="menu-panel align-end"
      label={
        <>
          <DownloadIcon /> Export <ChevronDownIcon />
        </>
      }
    >
      {(close) => (
        <>
          <button
            type="button"
            className="menu-item"
            onClick={() => {
              close();
              void exportConversation('markdown');
            }}
          >
            Export as Markdown
          </button>
          <button
            type="button"
            className="menu-item"
            onClick={() => {
              close();
              void exportConversation('json');
            }}
          >
            Export as JSON
          </button>
        </>
      )}
    </Disclosure>
  );
}
