import { MenuButton } from '../components/MenuButton';
import { ChevronDownIcon, DownloadIcon } from '../components/icons';
import { useActions } from '../state/context';

/** Export the open conversation as Markdown or JSON (a save dialog in the app, a download in the harness). */
export function ExportMenu() {
  const { exportConversation } = useActions();
  return (
    <MenuButton
      testId="export-menu"
      buttonClassName="button button-ghost"
      panelClassName="align-end"
      menuLabel="Export"
      label={
        <>
          <DownloadIcon /> Export <ChevronDownIcon />
        </>
      }
      actions={[
        { key: 'markdown', label: 'Export as Markdown', onSelect: () => void exportConversation('markdown') },
        { key: 'json', label: 'Export as JSON', onSelect: () => void exportConversation('json') },
      ]}
    />
  );
}
