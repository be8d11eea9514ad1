import * as path from 'node:path';
import type { Node } from 'constructs';

/**
 * Everything the app takes from CDK context (`cdk synth -c key=value` or `cdk.json`).
 * Only names and paths: the stack is environment-agnostic, so synthesis needs no AWS account.
 */
export interface PresenceConfig {
  /** Absolute path of the `cargo lambda build` output; holds one `<function>/bootstrap` dir per function. */
  readonly lambdaAssetsDir: string;
  /** Name of the IoT policy attached to every device certificate. */
  readonly devicePolicyName: string;
  /** Things to register with the stack (certificates are created outside CloudFormation). */
  readonly thingNames: string[];
  /** Where alarm notifications go besides the SNS topic (an e-mail subscription), if anywhere. */
  readonly alarmEmail?: string;
  /** How the disconnect-storm alarm decides (context `disconnectStormAlarm`). */
  readonly disconnectStorm: DisconnectStormAlarm;
}

/**
 * A fixed threshold (disconnect records in five minutes, all reasons together) suits a fleet whose normal
 * churn is known; an anomaly band (standard deviations around what CloudWatch learnt) suits one whose churn
 * follows the day. Context: `disconnectStormAlarm=<count>` or `disconnectStormAlarm=anomaly[:<stdDevs>]`.
 */
export type DisconnectStormAlarm =
  | { readonly kind: 'threshold'; readonly disconnectsPer5Minutes: number }
  | { readonly kind: 'anomaly'; readonly standardDeviations: number };

/** 50 disconnects in 5 minutes: far above a small fleet's churn, well below a mass disconnect. */
export const DEFAULT_DISCONNECT_STORM: DisconnectStormAlarm = { kind: 'threshold', disconnectsPer5Minutes: 50 };
const DEFAULT_ANOMALY_STD_DEVS = 3;

/** `make lambdas` writes here, relative to the repository root (the parent of `infra/`). */
export const DEFAULT_LAMBDA_ASSETS_DIR = '../target/lambda';
export const DEFAULT_DEVICE_POLICY_NAME = 'IotPresenceDevicePolicy';

/** Directory of `infra/`: relative context paths are resolved from here, not from the caller's cwd. */
const INFRA_DIR = path.resolve(__dirname, '..');

/** AWS IoT thing names: 1-128 chars of `[a-zA-Z0-9:_-]` (CreateThing API). */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
/** A deliberately loose check: SNS confirms the address by mail; this only catches a value in the wrong place. */
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
/** AWS IoT policy names: 1-128 chars of `[\w+=,.@-]` (CreatePolicy API). */
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

export class PresenceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PresenceConfigError';
  }
}

/** Reads and validates the context values; a bad value fails synthesis instead of a deployment. */
export function readPresenceConfig(node: Node): PresenceConfig {
  const assetsDir = contextString(node, 'lambdaAssetsDir') ?? DEFAULT_LAMBDA_ASSETS_DIR;
  const devicePolicyName = contextString(node, 'devicePolicyName') ?? DEFAULT_DEVICE_POLICY_NAME;
  if (!POLICY_NAME.test(devicePolicyName)) {
    throw new PresenceConfigError(
      `context devicePolicyName "${devicePolicyName}" is not a valid IoT policy name ([\\w+=,.@-], 1-128 chars)`,
    );
  }
  const thingNames = parseThingNames(contextString(node, 'things') ?? '');
  const alarmEmail = contextString(node, 'alarmEmail');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) {
    throw new PresenceConfigError(`context alarmEmail "${alarmEmail}" is not an e-mail address`);
  }
  const storm = contextString(node, 'disconnectStormAlarm');
  return {
    lambdaAssetsDir: path.resolve(INFRA_DIR, assetsDir),
    devicePolicyName,
    thingNames,
    alarmEmail,
    disconnectStorm: storm === undefined ? DEFAULT_DISCONNECT_STORM : parseDisconnectStormAlarm(storm),
  };
}

/** `<count>` (a whole number >= 1) or `anomaly` / `anomaly:<stdDevs>` (a number > 0). */
export function parseDisconnectStormAlarm(value: string): DisconnectStormAlarm {
  const text = value.trim();
  const anomaly = /^anomaly(?::(.+))?$/.exec(text);
  if (anomaly !== null) {
    const standardDeviations = anomaly[1] === undefined ? DEFAULT_ANOMALY_STD_DEVS : Number(anomaly[1]);
    if (!Number.isFinite(standardDeviations) || standardDeviations <= 0) {
      throw new PresenceConfigError(
        `context disconnectStormAlarm "${value}": the band's standard deviations must be a number above 0`,
      );
    }
    return { kind: 'anomaly', standardDeviations };
  }
  if (/^[0-9]+$/.test(text) && Number(text) >= 1) {
    return { kind: 'threshold', disconnectsPer5Minutes: Number(text) };
  }
  throw new PresenceConfigError(
    `context disconnectStormAlarm "${value}" must be a whole number of disconnects per 5 minutes (>= 1), ` +
      'or "anomaly" / "anomaly:<standard deviations>"',
  );
}

/** `things` is a comma-separated list; blanks are ignored, duplicates rejected (one CfnThing per name). */
export function parseThingNames(list: string): string[] {
  const names = list
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  for (const name of names) {
    if (!THING_NAME.test(name)) {
      throw new PresenceConfigError(`context things: "${name}" is not a valid thing name ([a-zA-Z0-9:_-], 1-128 chars)`);
    }
  }
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) {
    throw new PresenceConfigError(`context things: "${duplicate}" is listed twice`);
  }
  return names;
}

function contextString(node: Node, key: string): string | undefined {
  const value: unknown = node.tryGetContext(key);
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new PresenceConfigError(`context ${key} must be a string, got ${JSON.stringify(value)}`);
  }
  return value;
}
