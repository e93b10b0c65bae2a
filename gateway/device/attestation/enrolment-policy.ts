/** One requirement an organisation can set for new devices. */
export type EnrolmentRequirement = 'certificate' | 'tpm' | 'approval';

/**
 * Which new devices may enrol: `open` admits any key; otherwise every listed requirement must hold.
 */
export interface EnrolmentPolicy {
  /** The policy as configured, for logs and health (`open` or the requirements joined by `+`). */
  readonly name: string;
  readonly requirements: ReadonlySet<EnrolmentRequirement>;
}

/** The development default: any key may enrol. */
export const OPEN_ENROLMENT: EnrolmentPolicy = Object.freeze({
  name: 'open',
  requirements: new Set<EnrolmentRequirement>(),
});

const REQUIREMENTS: readonly EnrolmentRequirement[] = ['certificate', 'tpm', 'approval'];
const SEPARATOR = /[+,\s]/;

/**
 * Reads an enrolment policy from configuration: `open`, or one or more of `certificate`, `tpm`,
 * `approval` separated by `+`, `,` or spaces (or given as a list).
 *
 * Anything else — an unknown word, an empty value, `open` combined with a requirement — is
 * refused with an error naming the bad part, so a typo never silently admits every device.
 */
export function parseEnrolmentPolicy(value: string | readonly string[]): EnrolmentPolicy {
  // Each separator splits on its own; the empty words between separators are dropped below.
  const words = (typeof value === 'string' ? value.split(SEPARATOR) : value.flatMap((v) => v.split(SEPARATOR)))
    .map((word) => word.toLowerCase())
    .filter((word) => word.length > 0);
  if (words.length === 0) throw new Error('The enrolment policy is empty; write "open" to admit any device.');
  if (words.includes('open')) {
    if (words.some((word) => word !== 'open')) {
      throw new Error(`The enrolment policy "${words.join('+')}" combines "open" with requirements; choose one.`);
    }
    return OPEN_ENROLMENT;
  }
  const unknown = words.filter((word) => !(REQUIREMENTS as readonly string[]).includes(word));
  if (unknown.length > 0) {
    throw new Error(
      `Unknown enrolment requirement ${unknown.map((w) => `"${w}"`).join(', ')}; use open, certificate, tpm or approval.`,
    );
  }
  const requirements = new Set(words as EnrolmentRequirement[]);
  return Object.freeze({ name: REQUIREMENTS.filter((r) => requirements.has(r)).join('+'), requirements });
}
