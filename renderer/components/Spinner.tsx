/** A small indeterminate progress indicator; the text beside it says what is happening. */
export function Spinner({ className = '' }: { readonly className?: string }) {
  return <span className={`spinner ${className}`} aria-hidden="true" />;
}
