import { MANAGED_NOTICE } from '../../shared/managedPolicy';
import { LockIcon } from '../components/icons';

/** The notice beside a setting IT locked; `id` lets the control name it with `aria-describedby`. */
export function ManagedNotice({ id }: { readonly id: string }) {
  return (
    <p className="managed-notice" id={id}>
      <LockIcon /> {MANAGED_NOTICE}
    </p>
  );
}
