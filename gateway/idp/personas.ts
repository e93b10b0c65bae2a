/**
 * A demo person the development identity provider can sign in as.
 *
 * `groups` reach the gateway as the `groups` claim of the access token; US-person status is a
 * group that HR maintains (`us-persons`), never a location.
 */
export interface Persona {
  readonly id: string;
  readonly name: string;
  readonly username: string;
  readonly description: string;
  readonly groups: readonly string[];
}

/**
 * The four people the login page lists, one for each case the directive creates.
 *
 * The ids are fixed: tests, the README and the gateway's demo data refer to them.
 */
export const demoPersonas: readonly Persona[] = Object.freeze([
  Object.freeze({
    id: 'us-researcher',
    name: 'Avery Stone',
    username: 'avery@lab.example',
    description: 'US-person researcher on a compliant device',
    groups: Object.freeze(['research', 'us-persons']),
  }),
  Object.freeze({
    id: 'fn-researcher',
    name: 'Bao Nguyen',
    username: 'bao@lab.example',
    description: 'Foreign-national researcher on staff in the US (same office, different access)',
    groups: Object.freeze(['research']),
  }),
  Object.freeze({
    id: 'pending',
    name: 'Casey Ortiz',
    username: 'casey@lab.example',
    description: 'US person whose verification is pending',
    groups: Object.freeze(['research', 'us-person-verification-pending']),
  }),
  Object.freeze({
    id: 'contractor',
    name: 'Dana Kim',
    username: 'dana@contractor.example',
    description: 'Contractor outside the research group',
    groups: Object.freeze(['contractors']),
  }),
]);

/** Finds a persona by id in `personas`; undefined when there is none. */
export function findPersona(personas: readonly Persona[], id: string): Persona | undefined {
  return personas.find((persona) => persona.id === id);
}
