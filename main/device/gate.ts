import type { PostureCheck, PostureCheckId } from '../../shared/device';
import type { DeviceGateScope } from '../../shared/discovery';
import type { DeviceStatus } from '../../shared/ipc';
import { Emitter } from '../events';
import type { Clock } from '../platform';
import type { DeviceKey } from './key';

/** The local gate's decision: `unknown` until both the checks and the required list are known. */
export interface GateDecision {
  readonly gate: DeviceStatus['gate'];
  /** Required checks that did not pass (failed, unknown, or missing from the report). */
  readonly blocking: readonly PostureCheckId[];
}

/**
 * Decides the local device gate: it passes only when every required check reports `pass`.
 *
 * A required check that is `unknown` or absent fails, exactly like one that failed. With discovery's
 * scope `models` a failing device is `limited` (the app opens; the gateway keeps it from the models
 * that require a compliant device); with `app` or no scope it is `blocked`.
 */
export function evaluateDeviceGate(
  required: readonly PostureCheckId[] | undefined,
  checks: readonly PostureCheck[] | undefined,
  scope?: DeviceGateScope,
): GateDecision {
  if (!required || !checks) return { gate: 'unknown', blocking: [] };
  const blocking = required.filter((id) => checks.find((c) => c.id === id)?.status !== 'pass');
  if (blocking.length === 0) return { gate: 'pass', blocking };
  return { gate: scope === 'models' ? 'limited' : 'blocked', blocking };
}

/** What {@link DeviceGate} needs. */
export interface DeviceGateOptions {
  readonly posture: () => Promise<PostureCheck[]>;
  /** Opens the device key (only its thumbprint and assurance are used). */
  readonly deviceKey: () => Promise<Pick<DeviceKey, 'thumbprint' | 'assurance'>>;
  /** Discovery's `device_policy.required_checks`; `undefined` until discovery is known. */
  readonly requiredChecks: () => readonly PostureCheckId[] | undefined;
  /** Discovery's `device_policy.scope`; `undefined` (the whole app) until discovery says otherwise. */
  readonly scope?: () => DeviceGateScope | undefined;
  readonly clock: Clock;
}

/**
 * The local device gate: runs the posture checks and tells the renderer whether the app may go on.
 *
 * It only ever exposes the key's thumbprint. The gateway enforces the same policy on its own;
 * this gate exists so the user sees what to fix instead of a string of refusals.
 */
export class DeviceGate {
  private readonly changed = new Emitter<DeviceStatus>();
  private checks: PostureCheck[] | undefined;
  private key: Pick<DeviceKey, 'thumbprint' | 'assurance'> | undefined;
  private problem: string | undefined;
  private refusal: DeviceStatus['enrolment'];
  private checkedAt: string | undefined;
  private running: Promise<DeviceStatus> | undefined;

  /** Fires with the new status after every check and when the required list changes. */
  readonly onDidChange = this.changed.event;

  constructor(private readonly options: DeviceGateOptions) {}

  /** The status as of the last check. */
  status(): DeviceStatus {
    const required = this.options.requiredChecks();
    const decision = evaluateDeviceGate(required, this.checks, this.options.scope?.());
    return {
      thumbprint: this.key?.thumbprint,
      assurance: this.key?.assurance,
      checks: [...(this.checks ?? [])],
      requiredChecks: [...(required ?? [])],
      gate: this.problem || this.refusal ? 'blocked' : decision.gate,
      checkedAt: this.checkedAt,
      problem: this.problem,
      ...(this.refusal ? { enrolment: this.refusal } : {}),
    };
  }

  /** Runs the checks again (the device screen's "check again"); concurrent calls share one run. */
  recheck(): Promise<DeviceStatus> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Records that the gateway's enrolment policy refused (or, with `undefined`, admitted) this device.
   *
   * A refusal blocks the gate until the next check, which asks the gateway again.
   */
  setEnrolmentRefusal(refusal: DeviceStatus['enrolment']): void {
    if (refusal?.reason === this.refusal?.reason && refusal?.message === this.refusal?.message) return;
    this.refusal = refusal;
    this.changed.fire(this.status());
  }

  /** Tells listeners the status changed without re-running checks (call after discovery is refreshed). */
  notifyPolicyChanged(): void {
    this.changed.fire(this.status());
  }

  dispose(): void {
    this.changed.dispose();
  }

  private async run(): Promise<DeviceStatus> {
    const [key, checks] = await Promise.allSettled([this.options.deviceKey(), this.options.posture()]);
    const problems: string[] = [];
    if (key.status === 'fulfilled') {
      this.key = { thumbprint: key.value.thumbprint, assurance: key.value.assurance };
    } else {
      this.key = undefined;
      problems.push(describe(key.reason, 'The device key could not be opened'));
    }
    if (checks.status === 'fulfilled') {
      this.checks = checks.value;
    } else {
      this.checks = undefined;
      problems.push(describe(checks.reason, 'The device checks could not run'));
    }
    this.problem = problems.length > 0 ? problems.join(' ') : undefined;
    this.refusal = undefined;
    this.checkedAt = new Date(this.options.clock.now()).toISOString();
    const status = this.status();
    this.changed.fire(status);
    return status;
  }
}

function describe(error: unknown, fallback: string): string {
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : String(error);
  return name === 'DeviceKeyError' ? message : `${fallback}: ${message}.`;
}
